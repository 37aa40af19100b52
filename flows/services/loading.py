"""The flows as the engine reads them, cached per process and invalidated by ``Flow.updated_at``.

Every inbound message needs every flow's definition; reading three tables per message would
cost more than the turn itself. Each process keeps one copy, keyed by (flow count, newest
``Flow.updated_at``): any change to a flow, step or transition bumps ``updated_at`` (and a
deletion changes the count), so a key that still matches means the copy is current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max

from flows.definitions import FlowDefinition
from flows.models import Flow, FlowStep, FlowTransition, build_definition

__all__ = ["FlowsKey", "LoadedFlows", "cached_flows", "load_flows", "read_flows"]

FlowsKey = tuple[int, datetime | None]  # (flow count, newest Flow.updated_at)


@dataclass(frozen=True)
class LoadedFlows:
    """Every flow's definition by name, and its primary key by name, as of ``key``."""

    key: FlowsKey
    flows: Mapping[str, FlowDefinition]
    ids: Mapping[str, int]


_cache: LoadedFlows | None = None


def read_flows(key: FlowsKey = (0, None)) -> LoadedFlows:
    """Every flow from the database (three queries), bypassing the cache: the export wants
    exactly what is stored now."""
    flows = list(Flow.objects.order_by("id"))
    steps: dict[int, list[FlowStep]] = {}
    for step in FlowStep.objects.order_by("position", "id"):
        steps.setdefault(step.flow_id, []).append(step)
    transitions: dict[int, list[FlowTransition]] = {}
    for transition in FlowTransition.objects.select_related("from_step", "to_step").order_by("id"):
        transitions.setdefault(transition.flow_id, []).append(transition)
    definitions = {
        flow.name: build_definition(flow, steps.get(flow.pk, []), transitions.get(flow.pk, [])) for flow in flows
    }
    return LoadedFlows(key=key, flows=definitions, ids={flow.name: flow.pk for flow in flows})


def cached_flows(key: FlowsKey | None = None) -> LoadedFlows:
    """This process's copy of the flows, reloaded when ``key`` (flow count, newest
    ``Flow.updated_at``) changed; without a key it is read with one aggregate query.

    The message path passes the key it read together with the contact, saving that query.
    """
    global _cache
    if key is None:
        stats = Flow.objects.aggregate(count=Count("id"), last=Max("updated_at"))
        key = (stats["count"], stats["last"])
    cached = _cache
    if cached is None or cached.key != key:
        cached = _cache = read_flows(key)
    return cached


def load_flows() -> Mapping[str, FlowDefinition]:
    """Every flow (inactive ones too; the engine skips them), by name, in creation order.

    One aggregate query per call decides whether this process's copy is current.
    """
    return cached_flows().flows
