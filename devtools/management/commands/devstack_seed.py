"""``manage.py devstack_seed [--reset]``: idempotent development data (admin login, flows, samples).

The parts are ``devtools.seed.SEEDERS``. The seed creates what is missing and never overwrites
what exists, so what an operator changed in admin survives every ``./scripts/run``;
``--reset`` puts the shipped versions back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.devstack import DEV_ADMIN
from devtools.seed import SEEDERS


class Command(BaseCommand):
    help = "Load development data idempotently (refused outside DEBUG)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true",
                            help="overwrite the shipped flows with their files (edits made in admin are lost)")

    def handle(self, *args: Any, reset: bool, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("devstack_seed only runs with DEBUG=1: it creates a known admin login")
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEV_ADMIN[0]).exists():
            user_model.objects.create_superuser(DEV_ADMIN[0], "admin@example.com", DEV_ADMIN[1])
            self.stdout.write(f"created superuser {DEV_ADMIN[0]}")
        for name, seeder in SEEDERS:
            self.stdout.write(f"{name}: {seeder(reset=reset)}")
