"""``manage.py export_flows [--output FILE] [NAME...]``: write flows as an import document.

The output is the canonical format ``import_flows`` reads, so export -> import -> export is
byte-identical, and an export diffs cleanly against the shipped flows/default_flows/*.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flows.services.documents import export_flow_document


class Command(BaseCommand):
    help = "Export flows (all, or the named ones in that order) as a JSON document."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="flow names (default: every flow)")
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")

    def handle(self, *args: Any, names: list[str], output: str | None, **options: Any) -> None:
        try:
            document = export_flow_document(names or None)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {len(document['flows'])} flow(s) to {output}")
        else:
            self.stdout.write(text, ending="")
