"""``manage.py import_flows PATH... [--defaults]``: create or update flows from JSON documents.

All-or-nothing across every file: the first problem anywhere and nothing is written, and the
error lists every problem with its file and field path. Re-importing changes only what
changed; contacts in the middle of an updated flow keep their place (see flows.services.documents).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.definitions import FlowValidationError
from flows.services.documents import default_flow_paths, import_flow_files


class Command(BaseCommand):
    help = "Import flows from JSON documents (idempotent; nothing is written if any file is invalid)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="flow documents ({'version': 1, 'flows': [...]})")
        parser.add_argument("--defaults", action="store_true", help="also import flows/default_flows/*.json")

    def handle(self, *args: Any, paths: list[str], defaults: bool, **options: Any) -> None:
        files = [*default_flow_paths(), *paths] if defaults else list(paths)
        if not files:
            raise CommandError("nothing to import: give one or more paths, or --defaults")
        try:
            summary = import_flow_files(files)
        except FlowValidationError as exc:
            problems = "\n".join(f"  - {error}" for error in exc.errors)
            raise CommandError(f"nothing imported; {len(exc.errors)} problem(s):\n{problems}") from None
        self.stdout.write(f"flows: {summary}")
        for label, names in (("created", summary.created), ("updated", summary.updated)):
            for name in names:
                self.stdout.write(f"  {label} {name}")
