"""Flows in admin: flows with their steps and transitions inline, active sessions, and the
queue of contacts waiting for a human.

A flow is validated the way an import is: each step's config and each transition's condition
at its own field (``clean()`` on the models), and the whole flow (one entry step, transitions
between submitted steps, no endless auto-advance loop...) when the inlines are validated, with
each problem shown next to the row it is about. Nothing is saved while anything is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet, inlineformset_factory
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from flows.actions import action_names
from flows.definitions import FlowDefinition, StepDefinition, TransitionDefinition
from flows.diagram import flow_svg, step_types_help
from flows.document_format import validate_flow
from flows.models import ContactFlowState, Flow, FlowStep, FlowTransition, WaitingContact
from flows.services.documents import export_flow_document
from flows.services.sessions import expire_state, release_contact

STEP_FIELDS = ("name", "type", "is_entry", "position", "config")
TRANSITION_FIELDS = ("from_step", "to_step", "order", "condition")
_TRANSITION_KEYS = {"from": "from_step", "to": "to_step", "order": "order", "condition": "condition"}


def _alive(formset: BaseInlineFormSet) -> list[forms.ModelForm]:
    """Submitted rows that will exist after saving (not blank extras, not deleted)."""
    return [form for form in formset.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]


class StepInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        steps = _alive(self)
        entries = [form.cleaned_data["name"] for form in steps if form.cleaned_data.get("is_entry")]
        if steps and len(entries) != 1:
            marked = ", ".join(entries) or "none"
            raise ValidationError(f"A flow needs exactly one entry step (marked: {marked}).")


class TransitionInlineFormSet(BaseInlineFormSet):
    """Also validates the whole flow as submitted (steps from the sibling inline's data)."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        step_forms = StepFormSet(self.data, instance=self.instance, prefix="steps")
        if not step_forms.is_valid():
            return  # the steps inline shows its own errors
        steps = {form.cleaned_data["name"]: form for form in _alive(step_forms)}
        names_by_pk = {form.instance.pk: name for name, form in steps.items() if form.instance.pk}
        transitions: list[tuple[forms.ModelForm, TransitionDefinition]] = []
        for form in _alive(self):
            ends = {}
            for field in ("from_step", "to_step"):
                step = form.cleaned_data[field]
                ends[field] = names_by_pk.get(step.pk)
                if ends[field] is None:
                    form.add_error(field, f"step {step.name!r} is being deleted or renamed away")
            if None in ends.values():
                continue
            transitions.append((form, TransitionDefinition(
                ends["from_step"], ends["to_step"], form.cleaned_data["order"],
                form.cleaned_data.get("condition") or {"type": "always"},
            )))
        if any(self.errors):
            return
        entry = next((name for name, form in steps.items() if form.cleaned_data.get("is_entry")), "")
        definition = FlowDefinition(
            name=self.data.get("name") or self.instance.name or "flow",
            steps={name: StepDefinition(name, form.cleaned_data["type"], form.cleaned_data["config"] or {})
                   for name, form in steps.items()},
            transitions=tuple(t for _, t in transitions),
            entry_step=entry,
        )
        general = []
        for error in validate_flow(definition, path="flow", known_actions=action_names()):
            form, field = self._locate(error.path, transitions)
            if form is None:
                general.append(str(error))
            else:
                form.add_error(field, str(error).removeprefix("flow."))
        if general:
            raise ValidationError(general)

    @staticmethod
    def _locate(path: str, transitions: list[tuple[forms.ModelForm, Any]]) -> tuple[Any, str | None]:
        prefix = "flow.transitions["
        if not path.startswith(prefix):
            return None, None
        index, _, rest = path[len(prefix):].partition("]")
        key = rest.lstrip(".").split(".", 1)[0]
        return transitions[int(index)][0], _TRANSITION_KEYS.get(key)


class JSONTextarea(forms.Textarea):
    def __init__(self) -> None:
        super().__init__(attrs={"rows": 6, "cols": 70, "style": "font-family: monospace"})


StepFormSet = inlineformset_factory(
    Flow, FlowStep, formset=StepInlineFormSet, fields=STEP_FIELDS, extra=0, can_delete=True
)


CONFIG_HELP = "JSON; the keys of each step type are listed under “Step types” above."
CONDITION_HELP = 'JSON, e.g. {"type": "reply_id", "ids": ["yes"]}; empty means always (types under “Step types”).'


class FlowStepInline(admin.StackedInline):
    model = FlowStep
    formset = StepInlineFormSet
    fields = STEP_FIELDS
    extra = 0
    formfield_overrides = {models.JSONField: {"widget": JSONTextarea}}

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "config" and field is not None:
            field.help_text = CONFIG_HELP  # the page explains the types itself (not a source file)
        return field


class FlowTransitionInline(admin.TabularInline):
    model = FlowTransition
    fk_name = "flow"
    formset = TransitionInlineFormSet
    fields = TRANSITION_FIELDS
    extra = 0

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Only this flow's steps: a transition never leaves its flow.
        if db_field.name in ("from_step", "to_step"):
            flow_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            kwargs["queryset"] = FlowStep.objects.filter(flow_id=flow_id).order_by("position", "id")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "condition" and field is not None:
            field.help_text = CONDITION_HELP
        return field


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "keywords", "step_count", "session_count", "updated_at")
    list_filter = ("active",)
    search_fields = ("name", "description")
    readonly_fields = ("diagram", "step_types", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "active", "trigger_keywords")}),
        ("Diagram", {"fields": ("diagram",), "description": "The saved flow: steps (▶ the entry step; dashed: "
                                                           "nothing leads to it) and transitions with their "
                                                           "conditions, tried in order; a dashed arrow is where a "
                                                           "question goes after its last retry."}),
        ("Step types", {"fields": ("step_types",), "classes": ("collapse",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )  # fmt: skip
    inlines = (FlowStepInline, FlowTransitionInline)
    actions = ("export_json",)

    @admin.display(description="flow diagram")
    def diagram(self, flow: Flow) -> SafeString:
        if flow.pk is None:
            return format_html("<p>{}</p>", "Save the flow to see its diagram.")
        # Built from escaped parts by flows.diagram (no user text reaches it unescaped).
        return mark_safe(f'<div style="overflow-x: auto; max-width: 100%">{flow_svg(flow.to_definition())}</div>')  # noqa: S308

    @admin.display(description="what each step type does")
    def step_types(self, flow: Flow) -> SafeString:
        return mark_safe(step_types_help())  # noqa: S308 - generated from the step-type records, no user text

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flow]:
        return super().get_queryset(request).annotate(
            _steps=Count("steps", distinct=True), _sessions=Count("sessions", distinct=True)
        )

    @admin.display(description="trigger keywords")
    def keywords(self, flow: Flow) -> str:
        return ", ".join(flow.trigger_keywords or ())

    @admin.display(description="steps", ordering="_steps")
    def step_count(self, flow: Flow) -> int:
        return flow._steps

    @admin.display(description="active sessions", ordering="_sessions")
    def session_count(self, flow: Flow) -> int:
        return flow._sessions

    @admin.action(description="Export selected flows as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet[Flow]) -> HttpResponse:
        names = list(queryset.order_by("id").values_list("name", flat=True))
        body = json.dumps(export_flow_document(names), indent=2, ensure_ascii=False) + "\n"
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="flows.json"'
        return response


@admin.register(ContactFlowState)
class ContactFlowStateAdmin(admin.ModelAdmin):
    list_display = ("contact", "app_config", "flow", "step", "retries", "started_at", "last_activity_at", "idle")
    list_filter = ("flow", "app_config")
    search_fields = ("contact__wa_id", "contact__name", "contact__profile_name")
    list_select_related = ("contact", "flow")
    readonly_fields = [field.name for field in ContactFlowState._meta.fields]
    actions = ("expire_now",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="idle for")
    def idle(self, state: ContactFlowState) -> str:
        seconds = int((timezone.now() - state.last_activity_at).total_seconds())
        return f"{seconds // 60} min {seconds % 60:02d} s"

    @admin.action(description="Expire now (the contact is told the session timed out)")
    def expire_now(self, request: HttpRequest, queryset: QuerySet[ContactFlowState]) -> None:
        expired = sum(expire_state(pk, version) for pk, version in queryset.values_list("pk", "version"))
        self.message_user(request, f"Expired {expired} session(s).", messages.SUCCESS)


class ReleaseForm(ActionForm):
    message = forms.CharField(
        required=False, max_length=4096, label="Message to send on release (optional)",
        widget=forms.TextInput(attrs={"size": 50}),
    )


@admin.register(WaitingContact)
class WaitingContactAdmin(admin.ModelAdmin):
    """Contacts the bot handed over (or an operator took over), oldest first."""

    list_display = ("wa_id", "name", "profile_name", "handover_at", "waiting")
    search_fields = ("wa_id", "name", "profile_name")
    ordering = ("handover_at", "pk")
    action_form = ReleaseForm
    actions = ("release_to_bot",)
    fields = ("wa_id", "name", "profile_name", "email", "handover_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WaitingContact]:
        return super().get_queryset(request).filter(needs_human=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="waiting for")
    def waiting(self, contact: WaitingContact) -> str:
        if contact.handover_at is None:
            return "-"
        minutes = int((timezone.now() - contact.handover_at).total_seconds() // 60)
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"

    @admin.action(description="Release to the bot (sends the message below, if any)")
    def release_to_bot(self, request: HttpRequest, queryset: QuerySet[WaitingContact]) -> None:
        text = request.POST.get("message", "")
        released = sum(
            release_contact(pk, message=text, released_by=request.user.get_username())
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"Released {released} contact(s) to the bot.", messages.SUCCESS)
