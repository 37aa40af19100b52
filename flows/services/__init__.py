"""Every state change the flows app makes, one module per job:

* :mod:`~flows.services.processing`: inbound messages through the engine (the message path);
* :mod:`~flows.services.sessions`: the per-contact lock, human handover, session expiry;
* :mod:`~flows.services.loading`: the flows as the engine reads them, cached per process;
* :mod:`~flows.services.documents`: validating, importing and exporting flow documents.

The development data (the shipped flows loaded by ``devstack_seed``) is ``devtools.seed``.

Production code imports from the module that does the job. The names below are re-exported
so tests can say ``services.process_inbound`` without a list of imports per module.
"""

from __future__ import annotations

from flows.services.documents import (
    DEFAULT_FLOWS_DIR,
    ImportSummary,
    default_flow_paths,
    export_flow_document,
    import_flow_document,
    import_flow_files,
    validate_flow_document,
)
from flows.services.loading import load_flows
from flows.services.processing import (
    ProcessResult,
    answer_inbound,
    contact_view,
    engine_settings,
    inbound_from_message,
    process_inbound,
    record_processing_failure,
)
from flows.services.sessions import (
    expire_sessions,
    expire_state,
    lock_contact,
    release_contact,
    session_timeout,
    start_handover,
)

__all__ = [
    "DEFAULT_FLOWS_DIR",
    "ImportSummary",
    "ProcessResult",
    "answer_inbound",
    "contact_view",
    "default_flow_paths",
    "engine_settings",
    "expire_sessions",
    "expire_state",
    "export_flow_document",
    "import_flow_document",
    "import_flow_files",
    "inbound_from_message",
    "load_flows",
    "lock_contact",
    "process_inbound",
    "record_processing_failure",
    "release_contact",
    "session_timeout",
    "start_handover",
    "validate_flow_document",
]
