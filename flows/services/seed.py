"""Development data for the flows app: the shipped flows, loaded by ``devstack_seed``."""

from __future__ import annotations

from flows.services.documents import default_flow_paths, import_flow_files

__all__ = ["seed_development_data"]


def seed_development_data(*, reset: bool = False) -> str:
    """Create the shipped flows (``flows/default_flows/*.json``) that are missing.

    A flow that exists is left as it is, so an operator's edits in admin survive every
    restart of the dev stack; ``reset`` puts the shipped version back (the edits are lost).
    """
    return str(import_flow_files(default_flow_paths(), keep_existing=not reset))
