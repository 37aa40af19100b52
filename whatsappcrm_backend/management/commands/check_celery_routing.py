"""``manage.py check_celery_routing``: exits non-zero with one line per routing problem."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from whatsappcrm_backend.routing_check import project_problems


class Command(BaseCommand):
    help = "Check that every Celery task is routed to a queue a fitting worker in docker-compose.yml consumes."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--compose-file", help="compose file to check (default: docker-compose.yml)")

    def handle(self, *args: Any, compose_file: str | None = None, **options: Any) -> None:
        problems = project_problems(compose_file)
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError(f"{len(problems)} routing problem(s)")
        from whatsappcrm_backend import topology

        self.stdout.write(
            f"OK: {len(topology.TASKS)} tasks routed to {len(topology.QUEUES)} queues, "
            "each consumed by a fitting worker"
        )
