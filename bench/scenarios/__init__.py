"""The benchmark scenarios, in the order ``python -m bench all`` runs them.

Each module has ``NAME``, ``TITLE`` and ``run(ctx: Context) -> ScenarioResult``.
"""

from __future__ import annotations

from types import ModuleType

from bench.scenarios import backlog, campaign, cost, football, multipart, priority, reply, sending, webhook

SCENARIOS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (cost, webhook, reply, backlog, priority, multipart, sending, football, campaign)
}
