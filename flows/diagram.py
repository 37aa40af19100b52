"""A flow drawn as a diagram, and the step types explained, for the flow's admin page.

Both are plain markup built on the server: an inline ``<svg>`` (no CDN, no script, nothing
fetched) and an HTML reference generated from the step-type records in
:mod:`flows.definitions`, so the page explains exactly what validation accepts.

The layout is a simple layered one: breadth-first layers from the entry step along the
transitions (a row per layer), steps no transition reaches in a last row with a dashed
border. A transition to a lower row is a straight arrow; one back up (a loop, a re-ask) or
along its row is drawn as a curve on the right; a transition to its own step is a small loop.
Each arrow carries its condition (and its order when a step has several).

Pure module: no Django, no I/O.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from flows.conditions import CONDITION_KEYS, ConditionType
from flows.definitions import (
    ACTION_OPERATIONS,
    STEP_TYPES,
    ActionOperation,
    ConfigKeys,
    FlowDefinition,
    StepDefinition,
    StepType,
    TransitionDefinition,
    thaw,
)
from flows.validators import ReplyType

__all__ = ["condition_label", "flow_svg", "layers", "step_types_help"]

BOX_WIDTH = 200
BOX_HEIGHT = 46
COLUMN_GAP = 70
ROW_GAP = 74
MARGIN = 24
LOOP_SPACE = 150  # room on the right for arrows that go back up
NAME_MAX = 26
LABEL_MAX = 30

# Fill per step type (WhatsApp-ish greens for messages, amber for actions, red for handover).
_FILL = {
    StepType.SEND_MESSAGE: "#e7f6ec",
    StepType.QUESTION: "#dcf3fb",
    StepType.ACTION: "#fdf1d8",
    StepType.HUMAN_HANDOVER: "#fde2e1",
    StepType.END_FLOW: "#ececec",
}
_COMPARE = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥", "eq": "=", "ne": "≠"}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(thaw(value), ensure_ascii=False)


def _names(values: Any) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, (list, tuple)) else str(values)


def condition_label(condition: Mapping[str, Any]) -> str:
    """A transition's condition in a few words ("" for always)."""
    kind = condition.get("type", ConditionType.ALWAYS)
    variable = condition.get("variable", "")
    if kind == ConditionType.ALWAYS:
        return ""
    if kind == ConditionType.KEYWORD:
        return f"says {_names(condition.get('keywords', ()))}"
    if kind == ConditionType.REGEX:
        return f"matches /{condition.get('pattern', '')}/"
    if kind == ConditionType.REPLY_ID:
        return f"taps {_names(condition.get('ids', ()))}"
    if kind == ConditionType.MESSAGE_TYPE:
        return f"sends {_names(condition.get('types', ()))}"
    if kind == ConditionType.VARIABLE_EQUALS:
        return f"{variable} = {_value(condition.get('value'))}"
    if kind == ConditionType.VARIABLE_EXISTS:
        return f"{variable} is set"
    if kind == ConditionType.VARIABLE_CONTAINS:
        return f"{variable} contains {_value(condition.get('value'))}"
    if kind == ConditionType.VARIABLE_COMPARE:
        op = _COMPARE.get(str(condition.get("op")), str(condition.get("op")))
        return f"{variable} {op} {_value(condition.get('value'))}"
    if kind == ConditionType.ANSWER_VALID:
        return "valid answer" if condition.get("valid", True) else "invalid answer"
    return str(kind)


def _step_detail(step: StepDefinition) -> str:
    """The second line of a box: the type, and what kind of action or answer."""
    config = step.config
    if step.type is StepType.ACTION:
        operation = config.get("operation", "")
        if operation == ActionOperation.CALL:
            return f"action: {config.get('action', '')}"
        if operation == ActionOperation.START_FLOW:
            return f"action: start {config.get('flow', '')}"
        return f"action: {operation}"
    if step.type is StepType.QUESTION:
        expect = config.get("expect")
        kind = expect.get("type") if isinstance(expect, Mapping) else expect
        return f"question: {kind}" if kind else "question"
    return step.type.value.replace("_", " ")


def _depths(flow: FlowDefinition) -> dict[str, int]:
    """Breadth-first distance of each step the entry step reaches, in discovery order."""
    depth: dict[str, int] = {}
    if flow.entry_step in flow.steps:
        depth[flow.entry_step] = 0
        queue = deque([flow.entry_step])
        while queue:
            name = queue.popleft()
            for transition in flow.transitions_from(name):
                if transition.to_step in flow.steps and transition.to_step not in depth:
                    depth[transition.to_step] = depth[name] + 1
                    queue.append(transition.to_step)
    return depth


def layers(flow: FlowDefinition) -> list[list[str]]:
    """The steps in breadth-first layers from the entry step along the transitions (in
    transition order); steps no transition reaches form a last layer, in step order."""
    depth = _depths(flow)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name, row in depth.items():
        rows[row].append(name)
    unreached = [name for name in flow.steps if name not in depth]
    if unreached:
        rows.append(unreached)
    return rows


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    row: int

    @property
    def center(self) -> float:
        return self.x + BOX_WIDTH / 2

    @property
    def right(self) -> float:
        return self.x + BOX_WIDTH

    @property
    def middle(self) -> float:
        return self.y + BOX_HEIGHT / 2

    @property
    def bottom(self) -> float:
        return self.y + BOX_HEIGHT


def _label(x: float, y: float, text: str, anchor: str = "middle") -> str:
    if not text:
        return ""
    shown = escape(_short(text, LABEL_MAX))
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" font-size="11" fill="#1f2937" '
        f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{shown}</text>'
    )


def _edge(
    transition: TransitionDefinition, source: _Box, target: _Box, label: str, lane: int, right_edge: float
) -> str:
    """One transition as an arrow with its label, in a group that names both ends."""
    if transition.from_step == transition.to_step:
        x, y = source.right, source.middle
        path = f"M {x:.0f} {y - 10:.0f} C {x + 46:.0f} {y - 30:.0f}, {x + 46:.0f} {y + 30:.0f}, {x:.0f} {y + 10:.0f}"
        text = _label(x + 40, y + 4, label, "start")
    elif target.row > source.row:
        x1, y1, x2, y2 = source.center, source.bottom, target.center, target.y
        path = f"M {x1:.0f} {y1:.0f} L {x2:.0f} {y2:.0f}"
        text = _label((x1 + x2) / 2, (y1 + y2) / 2 + 4 + 12 * (lane % 2), label)
    else:  # back up or along the row: around the right side, each in its own lane
        bend = right_edge + 18 + 14 * (lane % 8)
        x1, y1, x2, y2 = source.right, source.middle, target.right, target.middle
        path = f"M {x1:.0f} {y1:.0f} C {bend:.0f} {y1:.0f}, {bend:.0f} {y2:.0f}, {x2:.0f} {y2:.0f}"
        text = _label(bend - 6, (y1 + y2) / 2, label, "end")
    title = escape(f"{transition.from_step} → {transition.to_step}" + (f": {label}" if label else ""))
    return (
        f'<g class="flow-edge" data-from="{escape(transition.from_step)}" data-to="{escape(transition.to_step)}">'
        f"<title>{title}</title>"
        f'<path d="{path}" fill="none" stroke="#64748b" stroke-width="1.4" marker-end="url(#flow-arrow)"/>'
        f"{text}</g>"
    )


def _node(step: StepDefinition, box: _Box, *, entry: bool, reached: bool) -> str:
    border = "#0f766e" if entry else "#94a3b8"
    dash = "" if reached else ' stroke-dasharray="5 4"'
    name = escape(_short(step.name, NAME_MAX))
    detail = escape(_short(_step_detail(step), NAME_MAX + 4))
    marker = "▶ " if entry else ""
    note = " (entry step)" if entry else ("" if reached else " (no transition reaches it)")
    return (
        f'<g class="flow-node" data-step="{escape(step.name)}" data-type="{step.type.value}">'
        f"<title>{escape(step.name)}: {escape(_step_detail(step))}{note}</title>"
        f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="7" '
        f'fill="{_FILL.get(step.type, "#ffffff")}" stroke="{border}" stroke-width="{2.5 if entry else 1.2}"{dash}/>'
        f'<text x="{box.center:.0f}" y="{box.y + 19:.0f}" text-anchor="middle" font-size="13" '
        f'font-weight="600" fill="#0f172a">{marker}{name}</text>'
        f'<text x="{box.center:.0f}" y="{box.y + 36:.0f}" text-anchor="middle" font-size="11" '
        f'fill="#475569">{detail}</text></g>'
    )


def flow_svg(flow: FlowDefinition) -> str:
    """The flow as an inline SVG: one ``flow-node`` group per step, one ``flow-edge`` group
    per transition (arrow and condition label), laid out in breadth-first layers."""
    rows = layers(flow)
    if not rows:
        return '<p class="flow-diagram-empty">This flow has no steps yet.</p>'
    widest = max(len(row) for row in rows)
    content_width = widest * BOX_WIDTH + (widest - 1) * COLUMN_GAP
    boxes: dict[str, _Box] = {}
    for index, row in enumerate(rows):
        row_width = len(row) * BOX_WIDTH + (len(row) - 1) * COLUMN_GAP
        left = MARGIN + (content_width - row_width) / 2
        top = MARGIN + index * (BOX_HEIGHT + ROW_GAP)
        for position, name in enumerate(row):
            boxes[name] = _Box(left + position * (BOX_WIDTH + COLUMN_GAP), top, index)
    right_edge = MARGIN + content_width
    width = right_edge + LOOP_SPACE
    height = MARGIN * 2 + len(rows) * BOX_HEIGHT + (len(rows) - 1) * ROW_GAP
    reached = _depths(flow)

    edges = []
    lanes = 0
    for step_name in flow.steps:
        outgoing = flow.transitions_from(step_name)
        for transition in outgoing:
            if transition.to_step not in boxes or transition.from_step not in boxes:
                continue
            label = condition_label(transition.condition)
            if len(outgoing) > 1:
                label = f"{transition.order}: {label or 'otherwise'}"
            edges.append(_edge(transition, boxes[transition.from_step], boxes[transition.to_step], label, lanes,
                               right_edge))  # fmt: skip
            lanes += 1
    nodes = [
        _node(flow.steps[name], box, entry=name == flow.entry_step, reached=name in reached)
        for name, box in boxes.items()
    ]
    return (
        f'<svg class="flow-diagram" role="img" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui, sans-serif">'
        f"<title>Flow {escape(flow.name)}: {len(boxes)} steps, {len(edges)} transitions</title>"
        '<defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/>'
        "</marker></defs>"
        + "".join(edges)
        + "".join(nodes)
        + "</svg>"
    )


def _keys(keys: ConfigKeys) -> str:
    parts = []
    if keys.required:
        parts.append("required: " + ", ".join(f"<code>{escape(k)}</code>" for k in keys.required))
    if keys.optional:
        parts.append("optional: " + ", ".join(f"<code>{escape(k)}</code>" for k in keys.optional))
    return f" <em>Config</em> {'; '.join(parts)}." if parts else " <em>Config</em>: nothing."


def step_types_help() -> str:
    """What each step type (and action operation) does and its config keys, the answer types
    a question can expect and the transition condition types: generated from the records
    validation uses, so it lists exactly what a flow may contain."""
    steps = "".join(
        f'<dt><code>{kind.value}</code></dt><dd>{escape(keys.summary)}{_keys(keys)}</dd>'
        for kind, keys in STEP_TYPES.items()
    )
    operations = "".join(
        f'<dt><code>{operation.value}</code></dt><dd>{escape(keys.summary)}{_keys(keys)}</dd>'
        for operation, keys in ACTION_OPERATIONS.items()
    )
    answers = ", ".join(f"<code>{kind.value}</code>" for kind in ReplyType)
    conditions = "".join(
        f"<li><code>{kind.value}</code>"
        + (" (" + ", ".join(f"<code>{escape(k)}</code>{'' if required else '?'}"
                            for k, required in CONDITION_KEYS[kind].items()) + ")" if CONDITION_KEYS[kind] else "")
        + "</li>"
        for kind in ConditionType
    )  # fmt: skip
    return (
        '<div class="flow-step-types">'
        f'<p><strong>Step types</strong> (a step\'s <code>type</code>; its <code>config</code> is JSON):</p>'
        f"<dl>{steps}</dl>"
        f"<p><strong>Action operations</strong> (an <code>action</code> step's <code>operation</code>):</p>"
        f"<dl>{operations}</dl>"
        f"<p><strong>Answers a question can expect</strong> (<code>expect.type</code>): {answers}.</p>"
        "<p><strong>Transition conditions</strong> (<code>condition.type</code>, with its keys; ? = optional). "
        "A step's transitions are tried by <code>order</code>; the first that holds is followed, and a step "
        "with none that holds ends the flow.</p>"
        f"<ul>{conditions}</ul>"
        "</div>"
    )
