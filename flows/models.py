"""Flows in the database: Flow -> FlowStep -> FlowTransition, and each contact's ContactFlowState.

The rows mirror the records in :mod:`flows.definitions` one-to-one (a step's ``config`` and a
transition's ``condition`` are JSON columns), so validation is the pure module's, run from
``clean()`` (admin shows each problem at its field) and from the import service.

What the database enforces, and what it cannot:

* one entry step per flow: a partial unique index (``is_entry`` rows, unique per flow);
* step names unique per flow, transition order unique per source step;
* one flow state per contact: a OneToOne column (unique), so two first messages processed at
  once can never create two sessions;
* a transition's two steps belong to its flow. A CHECK constraint cannot look at another
  table and Django has no composite foreign keys, so the transition stores ``flow`` and
  ``save()`` refuses a step from another flow; on PostgreSQL migration 0002 also adds real
  composite foreign keys ``(flow_id, from_step_id) -> flowstep(flow_id, id)`` (and the same for
  ``to_step``) against the ``(flow, id)`` unique constraint, so even raw SQL cannot cross flows.
  SQLite cannot add a foreign key to an existing table, so there ``save()``/``clean()`` guard.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from conversations.models import Contact
from flows.actions import action_names, check_action_inputs
from flows.conditions import normalize_text
from flows.definitions import (
    FieldError,
    FlowDefinition,
    StepDefinition,
    StepType,
    TransitionDefinition,
)
from flows.step_validation import validate_condition, validate_step_config
from meta_integration.models import MetaAppConfig


def errors_by_field(
    errors: list[FieldError], fields: dict[str, str], default: str | None = None
) -> dict[str, list[str]]:
    """Map FieldError paths to model fields: ``config.expect.pattern`` -> ``{"config": [...]}``.

    ``fields`` maps a path's first segment to the model field; the full path stays in the
    message, so the operator sees exactly which key inside the JSON is wrong.
    """
    out: dict[str, list[str]] = {}
    for error in errors:
        head = error.path.split(".", 1)[0].split("[", 1)[0]
        field = fields.get(head, default)
        out.setdefault(field or "__all__", []).append(str(error))
    return out


def check_keywords(keywords: Any) -> list[FieldError]:
    """The same rules as a flow document's ``trigger_keywords`` (see flows.document_format)."""
    if not isinstance(keywords, list):
        return [FieldError("trigger_keywords", "must be a list of strings")]
    errors, seen = [], set()
    for index, keyword in enumerate(keywords):
        key = normalize_text(keyword) if isinstance(keyword, str) else ""
        if not key:
            errors.append(FieldError(f"trigger_keywords[{index}]", "must be a string with a letter or digit"))
        elif key in seen:
            errors.append(FieldError(f"trigger_keywords[{index}]", f"duplicate trigger keyword {keyword!r}"))
        seen.add(key)
    return errors


class Flow(models.Model):
    name = models.CharField(max_length=100, unique=True, help_text="Unique; also what a start_flow action names")
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True, db_index=True, help_text="Inactive flows never start")
    trigger_keywords = models.JSONField(
        default=list, blank=True, help_text='Whole words that start this flow, e.g. ["profile", "account"]'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Also bumped when a step or transition changes")

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~Q(name=""), name="flow_name_set")]

    def __str__(self) -> str:
        return self.name if self.active else f"{self.name} (inactive)"

    def clean(self) -> None:
        errors = check_keywords(self.trigger_keywords)
        if self.name != self.name.strip():
            errors.append(FieldError("name", "must not start or end with spaces"))
        if not errors and self.active:
            errors = self.trigger_conflicts()
        if errors:
            raise ValidationError(errors_by_field(errors, {"name": "name", "trigger_keywords": "trigger_keywords"}))

    def trigger_conflicts(self) -> list[FieldError]:
        """Trigger keywords another active flow already uses (a word must start one flow)."""
        others = Flow.objects.filter(active=True).exclude(pk=self.pk).values_list("name", "trigger_keywords")
        taken = {normalize_text(k): name for name, keywords in others for k in keywords or () if isinstance(k, str)}
        return [
            FieldError(f"trigger_keywords[{index}]", f"trigger {keyword!r} is already used by flow {taken[key]!r}")
            for index, keyword in enumerate(self.trigger_keywords or ())
            if isinstance(keyword, str) and (key := normalize_text(keyword)) in taken
        ]

    def touch(self) -> None:
        """Mark the flow changed, so every worker's cached definitions reload."""
        Flow.objects.filter(pk=self.pk).update(updated_at=timezone.now())

    def to_definition(self) -> FlowDefinition:
        """The engine's record for this flow (three queries; use services.load_flows in bulk)."""
        steps = list(self.steps.order_by("position", "id"))
        transitions = FlowTransition.objects.filter(flow=self).select_related("from_step", "to_step")
        return build_definition(self, steps, transitions)


def build_definition(flow: Flow, steps: list[FlowStep], transitions: Any) -> FlowDefinition:
    """Rows -> record, with no logic beyond field mapping."""
    entry = next((step.name for step in steps if step.is_entry), "")
    return FlowDefinition(
        name=flow.name,
        description=flow.description,
        active=flow.active,
        trigger_keywords=tuple(flow.trigger_keywords or ()),
        steps={step.name: StepDefinition(step.name, step.type, step.config) for step in steps},
        transitions=tuple(
            TransitionDefinition(t.from_step.name, t.to_step.name, t.order, t.condition)
            for t in sorted(transitions, key=lambda t: t.id)
        ),
        entry_step=entry,
    )


class _PartOfFlow:
    """A step or transition: deleting one marks its flow changed, so every process's cached
    definitions reload (saving does the same, in each model's ``save``)."""

    flow: Flow

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        flow = self.flow
        result = super().delete(*args, **kwargs)
        flow.touch()
        return result


class FlowStep(_PartOfFlow, models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=[(t.value, t.value.replace("_", " ")) for t in StepType])
    config = models.JSONField(default=dict, blank=True, help_text="See flows/definitions.py for each type's keys")
    is_entry = models.BooleanField("entry step", default=False, help_text="Where the flow starts; exactly one per flow")
    position = models.PositiveIntegerField(default=0, help_text="Display and export order")

    class Meta:
        ordering = ["flow", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "name"], name="flowstep_name_unique_in_flow"),
            models.UniqueConstraint(
                fields=["flow"], condition=Q(is_entry=True), name="flowstep_one_entry_per_flow",
                violation_error_message="This flow already has an entry step; a flow has exactly one.",
            ),
            # Target of the composite foreign keys from FlowTransition (PostgreSQL, migration 0002).
            models.UniqueConstraint(fields=["flow", "id"], name="flowstep_flow_id_unique"),
            models.CheckConstraint(condition=Q(type__in=[t.value for t in StepType]), name="flowstep_type_valid"),
            models.CheckConstraint(condition=~Q(name=""), name="flowstep_name_set"),
        ]

    def __str__(self) -> str:
        return f"{self.flow.name}.{self.name}" if self.flow_id else self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self.flow.touch()

    def clean(self) -> None:
        step_names = None
        if self.flow_id:
            step_names = set(self.flow.steps.exclude(pk=self.pk).values_list("name", flat=True)) | {self.name}
        errors = validate_step_config(
            self.type, self.config, path="config", step_names=step_names, known_actions=action_names()
        )
        if not errors and self.type == StepType.ACTION and self.config.get("operation") == "call":
            errors = check_action_inputs(self.config["action"], self.config.get("inputs", {}))
        if errors:
            raise ValidationError(errors_by_field(errors, {"config": "config", "type": "type"}, "config"))


class FlowTransition(_PartOfFlow, models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="transitions")
    from_step = models.ForeignKey(FlowStep, on_delete=models.CASCADE, related_name="outgoing")
    to_step = models.ForeignKey(FlowStep, on_delete=models.CASCADE, related_name="incoming")
    order = models.PositiveIntegerField(default=0, help_text="Lower is tried first")
    condition = models.JSONField(default=dict, blank=True, help_text='e.g. {"type": "always"}; empty means always')

    class Meta:
        ordering = ["flow", "from_step", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["from_step", "order"], name="flowtransition_order_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.from_step} -> {self.to_step.name} (#{self.order})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.flow_id and self.from_step_id:
            self.flow_id = self.from_step.flow_id
        if not self.condition:
            self.condition = {"type": "always"}
        errors = self._foreign_flow_errors()
        if errors:
            raise ValidationError(errors)
        super().save(*args, **kwargs)
        self.flow.touch()

    def clean(self) -> None:
        if not self.flow_id and self.from_step_id:
            self.flow_id = self.from_step.flow_id
        errors = self._foreign_flow_errors()
        problems = validate_condition(self.condition or {"type": "always"}, "condition")
        if problems:
            errors.setdefault("condition", []).extend(str(p) for p in problems)
        if errors:
            raise ValidationError(errors)

    def _foreign_flow_errors(self) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        for field in ("from_step", "to_step"):
            step = getattr(self, field, None) if getattr(self, f"{field}_id") else None
            if step is not None and self.flow_id and step.flow_id != self.flow_id:
                errors[field] = [f"step {step} belongs to another flow; a transition stays inside its flow"]
        return errors


class ContactFlowState(models.Model):
    """A contact's conversation with one business number: waiting at a question step of a flow.

    A contact who writes to two numbers has two chats on their phone, and so two sessions
    here, each expiring on its own (``app_config`` is the number; null only for a number
    that was deleted, and then at most one such session).

    ``version`` goes up on every change; the expiry job deletes a state only if the version it
    read is still the current one, so a state that just received a message is never expired.
    ``step`` is a name, not a foreign key: re-importing a flow replaces step rows without
    deleting the conversations in it (see services.import_flow_document).
    """

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="flow_states")
    app_config = models.ForeignKey(
        MetaAppConfig, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="The business number this conversation is with",
    )
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="sessions")
    step = models.CharField(max_length=100)
    variables = models.JSONField(default=dict, blank=True)
    retries = models.PositiveIntegerField(default=0)
    awaiting_reply = models.BooleanField(default=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = "active session"
        ordering = ["last_activity_at"]
        constraints = [
            models.CheckConstraint(condition=Q(version__gte=1), name="contactflowstate_version_positive"),
            models.UniqueConstraint(fields=["contact", "app_config"], name="one_session_per_conversation"),
            models.UniqueConstraint(
                fields=["contact"], condition=Q(app_config__isnull=True), name="one_session_without_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.flow.name}.{self.step}"


class WaitingContact(Contact):
    """Contacts in human handover, oldest first: the operators' queue (admin only)."""

    class Meta:
        proxy = True
        verbose_name = "contact waiting for a human"
        verbose_name_plural = "contacts waiting for a human"
