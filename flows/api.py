"""REST API for what the bot is doing: flows (list, detail, import, export), active sessions
(list, expire) and human handover (take a contact over, give it back).

Every change goes through ``flows.services``, which holds the contact's row lock and sends any
notice on commit; the views only translate its answers into HTTP. Handover and release live
here rather than in ``conversations.api`` because they end or restart bot sessions and
``conversations`` must not depend on ``flows``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from conversations.api import ContactSerializer
from conversations.models import Contact
from conversations.services.outbound import NoBusinessNumberError
from conversations.window import window_open
from flows.definitions import FieldError, FlowValidationError
from flows.document_format import flow_to_document
from flows.models import ContactFlowState, Flow
from flows.services.documents import export_flow_document, import_flow_document
from flows.services.sessions import expire_state, release_contact, start_handover
from whatsappcrm_backend.api import ApiMixin, PagePagination, Role, error_responses
from whatsappcrm_backend.api_errors import ApiError

__all__ = [
    "ContactHandover",
    "ContactRelease",
    "FlowDetail",
    "FlowExport",
    "FlowImport",
    "FlowList",
    "FlowStateExpire",
    "FlowStateList",
    "field_errors",
    "urlpatterns",
]


def field_errors(errors: list[FieldError]) -> dict[str, list[str]]:
    """The validator's problems by path; a document-level problem has an empty path."""
    out: dict[str, list[str]] = {}
    for error in errors:
        out.setdefault(error.path or api_settings.NON_FIELD_ERRORS_KEY, []).append(error.message)
    return out


# --------------------------------------------------------------------------- serializers


class FlowSerializer(serializers.ModelSerializer):
    steps = serializers.IntegerField(source="step_count", read_only=True, help_text="Number of steps")
    sessions = serializers.IntegerField(
        source="session_count", read_only=True, help_text="Contacts in this flow right now"
    )

    class Meta:
        model = Flow
        fields = (
            "id", "name", "description", "active", "trigger_keywords", "steps", "sessions", "created_at", "updated_at",
        )  # fmt: skip
        read_only_fields = fields


class FlowDetailSerializer(FlowSerializer):
    document = serializers.SerializerMethodField(help_text="The flow as it appears in an import/export document")

    class Meta(FlowSerializer.Meta):
        fields = (*FlowSerializer.Meta.fields, "document")
        read_only_fields = fields

    def get_document(self, flow: Flow) -> dict[str, Any]:
        return flow_to_document([flow.to_definition()])["flows"][0]


class FlowStateSerializer(serializers.ModelSerializer):
    contact_wa_id = serializers.CharField(source="contact.wa_id", read_only=True)
    flow = serializers.CharField(source="flow.name", read_only=True)

    class Meta:
        model = ContactFlowState
        fields = (
            "id", "contact", "contact_wa_id", "app_config", "flow", "step", "variables", "retries",
            "awaiting_reply", "started_at", "last_activity_at", "version",
        )  # fmt: skip
        read_only_fields = fields


class FlowStateFilters(serializers.Serializer):
    flow = serializers.CharField(required=False, max_length=100, help_text="Only sessions in this flow (name)")
    contact = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class ExpireSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1,
        help_text="The version you saw; if the session moved on since, nothing is expired (409)",
    )  # fmt: skip
    notify = serializers.BooleanField(default=True, help_text="Tell the user the session ended")


class ExpireResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    expired = serializers.BooleanField()


class HandoverResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False if the contact was already in that state")
    contact = ContactSerializer()


class ReleaseSerializer(serializers.Serializer):
    message = serializers.CharField(
        required=False, allow_blank=True, max_length=4096,
        help_text="Sent to the contact (as you) when the bot takes over again",
    )  # fmt: skip


class FlowDocumentSerializer(serializers.Serializer):
    """Shape of an import/export document; the flows validator checks the rest."""

    version = serializers.IntegerField()
    flows = serializers.ListField(child=serializers.DictField())


class ImportSummarySerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())
    sessions_reset = serializers.IntegerField(help_text="Contacts told the flow changed (their step is gone)")


# --------------------------------------------------------------------------- flows


def _flows() -> QuerySet[Flow]:
    return Flow.objects.annotate(
        step_count=Count("steps", distinct=True), session_count=Count("sessions", distinct=True)
    ).order_by("pk")


class FlowList(ApiMixin, generics.ListAPIView):
    """Flows in creation order. Role: read-only."""

    serializer_class = FlowSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[Flow]:
        return _flows()

    @extend_schema(responses={200: FlowSerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class FlowDetail(ApiMixin, generics.RetrieveAPIView):
    """One flow with its steps and transitions as a document. Role: read-only."""

    serializer_class = FlowDetailSerializer

    def get_queryset(self) -> QuerySet[Flow]:
        return _flows()

    @extend_schema(responses={200: FlowDetailSerializer, **error_responses(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class FlowImport(ApiMixin, generics.GenericAPIView):
    """Create or update flows from a document, all or nothing. Role: admin."""

    write_role = Role.ADMIN
    serializer_class = FlowDocumentSerializer

    @extend_schema(
        summary="Import a flow document",
        description=(
            'The body is a document as exported: {"version": 1, "flows": [...]}. It is validated completely '
            "first; any problem is a 400 listing every field path at fault, and nothing is written. Changed "
            "flows are updated in place, so contacts in them keep their place unless their step is gone."
        ),
        request=FlowDocumentSerializer,
        responses={200: ImportSummarySerializer, **error_responses(400)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            summary = import_flow_document(request.data)
        except FlowValidationError as exc:
            fields = field_errors(exc.errors)
            raise ApiError(400, "invalid", f"The flow document is invalid: {exc.errors[0]}"
                           + (f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""), fields) from None
        except NoBusinessNumberError as exc:  # a contact must be told its flow changed, and cannot be
            raise ApiError(409, "no_business_number", str(exc)) from None
        return Response(
            {
                "created": list(summary.created),
                "updated": list(summary.updated),
                "unchanged": list(summary.unchanged),
                "sessions_reset": summary.sessions_reset,
            }
        )


class FlowExport(ApiMixin, generics.GenericAPIView):
    """Flows as an import document (all, or those named). Role: read-only."""

    @extend_schema(
        summary="Export flows as a document",
        parameters=[
            OpenApiParameter(
                "name", OpenApiTypes.STR, many=True, required=False,
                description="Flow name; repeat for several. Omit for every flow.",
            )
        ],
        responses={200: FlowDocumentSerializer, **error_responses(404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        names = [name for name in request.query_params.getlist("name") if name]
        try:
            document = export_flow_document(names or None)
        except LookupError as exc:
            raise ApiError(404, "not_found", f"name: {exc.args[0]}", {"name": [str(exc.args[0])]}) from None
        return Response(document)


# --------------------------------------------------------------------------- sessions


class FlowStateList(ApiMixin, generics.ListAPIView):
    """Active sessions, longest idle first. Role: read-only."""

    serializer_class = FlowStateSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[ContactFlowState]:
        filters = FlowStateFilters(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        states = ContactFlowState.objects.select_related("contact", "flow").order_by("last_activity_at", "pk")
        if "flow" in filters.validated_data:
            states = states.filter(flow__name=filters.validated_data["flow"])
        if "contact" in filters.validated_data:
            states = states.filter(contact_id=filters.validated_data["contact"])
        return states

    @extend_schema(
        parameters=[FlowStateFilters], responses={200: FlowStateSerializer(many=True), **error_responses(400, 404)}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class FlowStateExpire(ApiMixin, generics.GenericAPIView):
    """End a session now (and tell the user). Role: agent."""

    queryset = ContactFlowState.objects.all()
    serializer_class = ExpireSerializer

    @extend_schema(
        summary="Expire a session",
        request=ExpireSerializer,
        responses={200: ExpireResultSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        state = self.get_object()
        form = ExpireSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        version = form.validated_data.get("version", state.version)
        try:
            expired = expire_state(state.pk, version, notify=form.validated_data["notify"])
        except NoBusinessNumberError as exc:
            raise ApiError(409, "no_business_number", str(exc)) from None
        if not expired:
            current = ContactFlowState.objects.filter(pk=state.pk).values_list("version", flat=True).first()
            if current is None:
                raise ApiError(404, "not_found", f"Session {state.pk} has already ended.")
            raise ApiError(
                409, "stale_version",
                f"Session {state.pk} changed since you looked (version {current}, you sent {version}); "
                "nothing was expired. Reload it and try again.",
                {"version": [f"the current version is {current}"]},
            )  # fmt: skip
        return Response({"id": state.pk, "expired": True})


# --------------------------------------------------------------------------- handover


class ContactHandover(ApiMixin, generics.GenericAPIView):
    """Take a contact over from the bot: the bot goes quiet and its session ends. Role: agent."""

    queryset = Contact.objects.all()
    serializer_class = HandoverResultSerializer

    @extend_schema(request=None, responses={200: HandoverResultSerializer, **error_responses(404)})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        changed = start_handover(contact.pk)
        contact.refresh_from_db()
        return Response({"changed": changed, "contact": ContactSerializer(contact).data})


class ContactRelease(ApiMixin, generics.GenericAPIView):
    """Give a contact back to the bot, optionally with a message. Role: agent."""

    queryset = Contact.objects.all()
    serializer_class = HandoverResultSerializer

    @extend_schema(
        request=ReleaseSerializer, responses={200: HandoverResultSerializer, **error_responses(400, 404, 409)}
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        form = ReleaseSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        text = form.validated_data.get("message", "").strip()
        window_closed = not window_open(contact.last_inbound_at, timezone.now())
        if text and contact.needs_human and not contact.blocked and window_closed:
            raise ApiError(
                409, "window_closed",
                f"Contact {contact.wa_id} has not written in the last 24 hours, so WhatsApp would refuse the "
                "message; nothing changed. Release without a message.",
                {"message": ["outside the 24-hour window"]},
            )  # fmt: skip
        try:
            changed = release_contact(contact.pk, message=text, released_by=request.user.get_username())
        except NoBusinessNumberError as exc:
            raise ApiError(409, "no_business_number", f"{exc}; nothing changed.") from None
        contact.refresh_from_db()
        return Response({"changed": changed, "contact": ContactSerializer(contact).data})


urlpatterns = [
    path("flows/", FlowList.as_view(), name="flow-list"),
    path("flows/import/", FlowImport.as_view(), name="flow-import"),
    path("flows/export/", FlowExport.as_view(), name="flow-export"),
    path("flows/<int:pk>/", FlowDetail.as_view(), name="flow-detail"),
    path("flow-states/", FlowStateList.as_view(), name="flowstate-list"),
    path("flow-states/<int:pk>/expire/", FlowStateExpire.as_view(), name="flowstate-expire"),
    path("contacts/<int:pk>/handover/", ContactHandover.as_view(), name="contact-handover"),
    path("contacts/<int:pk>/release/", ContactRelease.as_view(), name="contact-release"),
]
