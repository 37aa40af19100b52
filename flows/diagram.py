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
from collections import Counter, deque
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

__all__ = ["condition_label", "flow_svg", "give_up_target", "layers", "step_types_help"]

BOX_WIDTH = 200
BOX_HEIGHT = 46
COLUMN_GAP = 70
ROW_GAP = 74
MARGIN = 24
LOOP_SPACE = 60  # room on the right for a step's arrow to itself
LANE_GAP = 11  # between the lanes of arrows that go back up
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


def give_up_target(flow: FlowDefinition, step: StepDefinition) -> str | None:
    """The step a question goes to after its last retry (``on_max_retries`` naming a step)."""
    target = step.config.get("on_max_retries") if step.type is StepType.QUESTION else None
    return target if isinstance(target, str) and target in flow.steps else None


def _depths(flow: FlowDefinition) -> dict[str, int]:
    """Breadth-first distance of each step the entry step reaches (along transitions, and a
    question's ``on_max_retries`` step), in discovery order."""
    depth: dict[str, int] = {}
    if flow.entry_step in flow.steps:
        depth[flow.entry_step] = 0
        queue = deque([flow.entry_step])
        while queue:
            name = queue.popleft()
            targets = [t.to_step for t in flow.transitions_from(name)]
            targets.append(give_up_target(flow, flow.steps[name]) or "")
            for target in targets:
                if target in flow.steps and target not in depth:
                    depth[target] = depth[name] + 1
                    queue.append(target)
    return depth


def layers(flow: FlowDefinition) -> list[list[str]]:
    """The steps in breadth-first layers from the entry step along the transitions (in
    transition order, then a question's ``on_max_retries`` step); steps nothing reaches form
    a last layer, in step order."""
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


@dataclass(frozen=True)
class _Route:
    """Where one arrow runs: its path and where its label sits."""

    path: str
    label_x: float
    label_y: float
    anchor: str = "middle"


def _self_loop(box: _Box) -> _Route:
    x, y = box.right, box.middle
    path = f"M {x:.0f} {y - 10:.0f} C {x + 46:.0f} {y - 30:.0f}, {x + 46:.0f} {y + 30:.0f}, {x:.0f} {y + 10:.0f}"
    return _Route(path, x + 40, y + 4, "start")


def _down(source: _Box, target: _Box, nth: int) -> _Route:
    x1, y1, x2, y2 = source.center, source.bottom, target.center, target.y
    return _Route(f"M {x1:.0f} {y1:.0f} L {x2:.0f} {y2:.0f}", (x1 + x2) / 2, (y1 + y2) / 2 + 4 + 12 * (nth % 2))


def _around(
    source: _Box, target: _Box, lane_x: float, out_slot: int, in_slot: int, *, source_last: bool, target_last: bool
) -> _Route:
    """Back up (or along the row), in a lane of its own right of every box. It leaves the
    source by its right side (by its bottom when another box sits right of it in its row) and
    enters the target by its right side (by its top when another box sits right of it), so it
    never crosses a box. Several arrows at one box use different heights (or offsets)."""
    if source_last:
        y1 = source.y + 8 + (11 * out_slot) % (BOX_HEIGHT - 10)
        start, label = f"M {source.right:.0f} {y1:.0f} H {lane_x:.0f}", (source.right + 6, y1 - 3)
    else:
        x1 = source.center + 20 + (14 * out_slot) % (BOX_WIDTH / 2 - 24)
        y1 = source.bottom + 14 + 13 * out_slot  # a label's height apart
        start, label = f"M {x1:.0f} {source.bottom:.0f} V {y1:.0f} H {lane_x:.0f}", (x1 + 4, y1 - 3)
    if target_last:
        y2 = target.y + 10 + (7 * in_slot) % (BOX_HEIGHT - 16)
        end = f"V {y2:.0f} H {target.right:.0f}"
    else:
        x2 = target.center + 24 + (12 * in_slot) % (BOX_WIDTH / 2 - 28)
        y2 = target.y - 12 - 5 * in_slot
        end = f"V {y2:.0f} H {x2:.0f} V {target.y:.0f}"
    return _Route(f"{start} {end}", *label, "start")


def _edge(transition: TransitionDefinition, route: _Route, label: str, *, give_up: bool = False) -> str:
    """One transition as an arrow with its label, in a group that names both ends (a
    question's ``on_max_retries`` step: dashed, in a ``flow-give-up`` group)."""
    text = ""
    if label:
        text = (
            f'<text x="{route.label_x:.0f}" y="{route.label_y:.0f}" text-anchor="{route.anchor}" font-size="11" '
            f'fill="#1f2937" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
            f"{escape(_short(label, LABEL_MAX))}</text>"
        )
    title = escape(f"{transition.from_step} → {transition.to_step}" + (f": {label}" if label else ""))
    css_class, dash = ("flow-give-up", ' stroke-dasharray="6 4"') if give_up else ("flow-edge", "")
    return (
        f'<g class="{css_class}" data-from="{escape(transition.from_step)}" '
        f'data-to="{escape(transition.to_step)}"><title>{title}</title>'
        f'<path d="{route.path}" fill="none" stroke="#64748b" stroke-width="1.3"{dash} marker-end="url(#flow-arrow)"/>'
        f"{text}</g>"
    )


def _node(step: StepDefinition, box: _Box, *, entry: bool, reached: bool) -> str:
    border = "#0f766e" if entry else "#94a3b8"
    dash = "" if reached else ' stroke-dasharray="5 4"'
    name = escape(_short(step.name, NAME_MAX))
    detail = escape(_short(_step_detail(step), NAME_MAX + 4))
    marker = "▶ " if entry else ""
    note = " (entry step)" if entry else ("" if reached else " (nothing leads to it)")
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
    row_right = {index: max(boxes[name].right for name in row) for index, row in enumerate(rows)}

    # Every transition with its route; arrows that go back up (or along a row) each get a
    # lane of their own right of every box, so none crosses a box on its way.
    drawn: list[tuple[TransitionDefinition, str]] = []
    give_ups: set[int] = set()
    for step_name in flow.steps:
        outgoing = [t for t in flow.transitions_from(step_name) if t.to_step in boxes and t.from_step in boxes]
        for transition in outgoing:
            label = condition_label(transition.condition)
            if len(flow.transitions_from(step_name)) > 1:
                label = f"{transition.order}: {label or 'otherwise'}"
            drawn.append((transition, label))
        target = give_up_target(flow, flow.steps[step_name])
        if target is not None:  # not a transition: drawn dashed, for where the retries end
            link = TransitionDefinition(step_name, target)
            give_ups.add(id(link))
            drawn.append((link, "after the last retry"))
    back = [t for t, _ in drawn if t.from_step != t.to_step and boxes[t.to_step].row <= boxes[t.from_step].row]
    back.sort(key=lambda t: boxes[t.from_step].row - boxes[t.to_step].row)  # short spans on inner lanes
    lanes = {id(t): index for index, t in enumerate(back)}
    out_slots: Counter[str] = Counter()
    in_slots: Counter[str] = Counter()
    down_count = 0
    edges = []
    for transition, label in drawn:
        source, target = boxes[transition.from_step], boxes[transition.to_step]
        if transition.from_step == transition.to_step:
            route = _self_loop(source)
        elif id(transition) in lanes:
            lane_x = right_edge + 24 + LANE_GAP * lanes[id(transition)]
            route = _around(source, target, lane_x, out_slots[transition.from_step], in_slots[transition.to_step],
                            source_last=source.right == row_right[source.row],
                            target_last=target.right == row_right[target.row])  # fmt: skip
            out_slots[transition.from_step] += 1
            in_slots[transition.to_step] += 1
        else:
            route = _down(source, target, down_count)
            down_count += 1
        edges.append(_edge(transition, route, label, give_up=id(transition) in give_ups))
    width = right_edge + 48 + LANE_GAP * len(back) + (LOOP_SPACE if any(t.from_step == t.to_step for t, _ in drawn)
                                                      else 0)  # fmt: skip
    height = MARGIN * 2 + len(rows) * BOX_HEIGHT + (len(rows) - 1) * ROW_GAP + 14 * max(out_slots.values(), default=0)
    reached = _depths(flow)
    nodes = [
        _node(flow.steps[name], box, entry=name == flow.entry_step, reached=name in reached)
        for name, box in boxes.items()
    ]
    return (
        f'<svg class="flow-diagram" role="img" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="system-ui, sans-serif">'
        f"<title>Flow {escape(flow.name)}: {len(boxes)} steps, {len(edges) - len(give_ups)} transitions</title>"
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
