"""The football flows shipped with the app (``default_flows/football.json``): the WhatsApp
conversations that call ``football_data_app.actions``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["FOOTBALL_FLOWS_PATH", "import_football_flows"]

FOOTBALL_FLOWS_PATH = Path(__file__).resolve().parent.parent / "default_flows" / "football.json"


def import_football_flows(*, keep_existing: bool = False) -> str:
    """Load ``default_flows/football.json`` through the flows app's importer (idempotent);
    ``keep_existing`` leaves flows that exist as they are (the seed keeps admin edits)."""
    from flows.services.documents import import_flow_document  # optional app: imported on use

    document = json.loads(FOOTBALL_FLOWS_PATH.read_text(encoding="utf-8"))
    return str(import_flow_document(document, source=FOOTBALL_FLOWS_PATH.name, keep_existing=keep_existing))
