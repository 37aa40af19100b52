"""Helpers for the tests: worker processes, the broker between tests, webhook and outbound
set-up, flow builders. No tests and no fixtures here (fixtures are in tests/conftest.py);
pytest does not collect this package (``collect_ignore`` in conftest.py)."""
