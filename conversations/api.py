"""REST API for contacts and their conversations: list/search, detail, history, and sending.

An operator's message goes out exactly like the bot's: ``send_to_contact`` writes the pending
row and enqueues the send on commit, with ``sent_by`` set to the operator's username, so it
shows in the history, the admin and the simulator like any reply. What WhatsApp would refuse
is refused here first, with the field named (400) or the reason (409), and nothing is written.

Labels: list and create them (``/labels/``), put them on and take them off one contact
(``/contacts/{id}/labels/``) or many (``/contacts/labels/``), filter contacts with ``?label=``.
An unknown contact or label refuses the whole change (404 for the contact in the path, 400
for ids in the body) and nothing is written.

Human handover and release are in ``flows.api``: they end or restart bot sessions, and
conversations does not depend on flows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from conversations.models import Contact, Label, Message
from conversations.services import outbound
from conversations.services.labels import LabelError, change_labels
from conversations.window import window_open
from meta_integration.models import MessageTemplate
from meta_integration.outbound import OutboundValidationError, build_message
from meta_integration.templates import TemplateVariablesError
from whatsappcrm_backend.api import ApiMixin, PagePagination, error_responses
from whatsappcrm_backend.api_errors import ApiError

__all__ = [
    "BulkContactLabels",
    "ContactDetail",
    "ContactLabels",
    "ContactList",
    "ContactMessages",
    "ConversationPagination",
    "LabelList",
    "phone_digits",
    "urlpatterns",
]

MAX_DB_ID = 2**63 - 1  # beyond this an id lookup overflows the database's bigint
_PHONE_QUERY = re.compile(r"^\+?[\d\s().-]{3,}$")


def phone_digits(query: str) -> str | None:
    """The digits of a query that looks like a phone number ("+263 77-123"), else None.

    wa_ids are stored as bare digits, so "+263 77 123" must search for "26377123".
    """
    if not _PHONE_QUERY.match(query):
        return None
    digits = re.sub(r"\D", "", query)
    return digits or None


# --------------------------------------------------------------------------- serializers


class LabelBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ("id", "name", "color")
        read_only_fields = fields


class StrictCharField(serializers.CharField):
    """A string, and only a string (DRF's CharField turns 12 into "12")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LabelSerializer(serializers.ModelSerializer):
    name = StrictCharField(max_length=50, help_text="Unique, e.g. vip")
    color = serializers.RegexField(
        r"^#[0-9A-Fa-f]{6}\Z", required=False, default="#64748b", help_text="Hex colour, e.g. #16a34a",
        error_messages={"invalid": "Enter a hex colour like #16a34a."},
    )
    contact_count = serializers.IntegerField(read_only=True, help_text="Contacts with this label")

    class Meta:
        model = Label
        fields = ("id", "name", "color", "contact_count", "created_at")
        read_only_fields = ("id", "contact_count", "created_at")
        # a taken name is a 409 (the view), not a 400: the declared name field has no UniqueValidator


class ContactSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="Empty if the contact never gave one")
    labels = LabelBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Contact
        fields = (
            "id", "wa_id", "name", "profile_name", "email", "attributes", "first_seen_at",
            "last_inbound_at", "needs_human", "handover_at", "blocked", "labels",
            "marketing_opt_out", "marketing_opt_out_at",
        )  # fmt: skip
        read_only_fields = fields


def _id() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_DB_ID)


MAX_LABELS_PER_CHANGE = 50
MAX_CONTACTS_PER_CHANGE = 1000


class LabelChangeSerializer(serializers.Serializer):
    add = serializers.ListField(child=_id(), required=False, max_length=MAX_LABELS_PER_CHANGE,
                                help_text="Label ids to put on")
    remove = serializers.ListField(child=_id(), required=False, max_length=MAX_LABELS_PER_CHANGE,
                                   help_text="Label ids to take off")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("add") and not attrs.get("remove"):
            raise serializers.ValidationError({"add": ["give label ids to add and/or remove"]})
        return attrs


class BulkLabelChangeSerializer(LabelChangeSerializer):
    contacts = serializers.ListField(child=_id(), min_length=1, max_length=MAX_CONTACTS_PER_CHANGE,
                                     help_text="Contact ids to change")


class LabelChangeResultSerializer(serializers.Serializer):
    contacts = serializers.IntegerField(help_text="Contacts the change was applied to")
    added = serializers.IntegerField(help_text="Labels put on (ones already there are not counted)")
    removed = serializers.IntegerField(help_text="Labels taken off")
    labels = LabelBriefSerializer(many=True, required=False, help_text="The contact's labels now (one contact)")


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = (
            "id", "direction", "message_type", "text", "content", "status", "status_at", "wamid",
            "reply_to_wamid", "error_code", "error_title", "error_details", "timestamp", "created_at",
            "sent_at", "sent_by", "group_id", "part_index", "parts_total",
        )  # fmt: skip
        read_only_fields = fields


class ContactFilters(serializers.Serializer):
    search = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="Part of the WhatsApp number (spaces, + and dashes ignored) or of the name",
    )  # fmt: skip
    needs_human = serializers.BooleanField(required=False, help_text="true: only contacts waiting for a human")
    blocked = serializers.BooleanField(required=False)
    label = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_DB_ID, help_text="Only contacts with this label (its id)"
    )
    marketing_opt_out = serializers.BooleanField(required=False, help_text="true: only contacts who sent STOP")


class ConversationParams(serializers.Serializer):
    before = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_DB_ID, help_text="Messages older than this message id"
    )
    after = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_DB_ID, help_text="Messages newer than this message id"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError({"after": ["give either before or after, not both"]})
        return attrs


class SendMessageSerializer(serializers.Serializer):
    text = serializers.CharField(
        required=False, max_length=4096, help_text="A plain text message (shorthand for a text spec)"
    )
    spec = serializers.DictField(
        required=False,
        help_text='An outbound message spec as the bot sends: {"type": "text"|"buttons"|"list"|"media"|'
        '"location"|"template", ...} (see meta_integration.outbound.build_message)',
    )
    reply_to = serializers.CharField(
        required=False, max_length=256, help_text="wamid of a message in this conversation to quote"
    )
    template = serializers.CharField(
        required=False, max_length=512,
        help_text="A synced, approved template's name (or Meta's template id); the only message "
        "WhatsApp delivers outside the 24-hour window",
    )
    language = serializers.CharField(required=False, max_length=15, help_text="The template's language, e.g. en_US")
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=2048), required=False,
        help_text='The template\'s variables by slot: {"body.1": "Tendai", "header.1": "...", '
        '"header.media": "https://... or a media id", "button.0.1": "..."}',
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in ("text", "spec", "template") if key in attrs]
        if len(given) > 1:
            raise serializers.ValidationError({given[1]: [f"give one of text, spec or template, not {given[0]} too"]})
        if not given:
            raise serializers.ValidationError({"text": ["give either text, spec or template"]})
        for key in ("language", "variables"):
            if key in attrs and "template" not in attrs:
                raise serializers.ValidationError({key: ["only with template"]})
        return attrs


# --------------------------------------------------------------------------- pagination


class ConversationPagination(BasePagination):
    """Keyset pages over message ids, newest last: the first page is the latest ``limit``
    messages; ``older``/``newer`` link to the neighbouring pages (``?before=``/``?after=``).

    Ids follow insertion order, so a page never shifts when new messages arrive (an offset
    would), and a client polling ``?after=<last id>`` sees each new message exactly once.
    """

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Message]:
        params = ConversationParams(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        before, after = params.validated_data.get("before"), params.validated_data.get("after")
        limit = params.validated_data["limit"]
        self.request = request
        if after is not None:
            rows = list(queryset.filter(pk__gt=after).order_by("pk")[: limit + 1])
            self.has_newer = len(rows) > limit
            rows = rows[:limit]
            edge = rows[0].pk if rows else after + 1
            self.has_older = queryset.filter(pk__lt=edge).exists()
        else:
            newest_first = queryset.order_by("-pk")
            if before is not None:
                newest_first = newest_first.filter(pk__lt=before)
            rows = list(newest_first[: limit + 1])
            self.has_older = len(rows) > limit
            rows = rows[:limit][::-1]
            self.has_newer = before is not None and queryset.filter(
                pk__gt=rows[-1].pk if rows else before - 1
            ).exists()
        self.rows = rows
        return rows

    def _link(self, key: str, value: int) -> str:
        url = self.request.build_absolute_uri()
        url = remove_query_param(url, "before" if key == "after" else "after")
        return replace_query_param(url, key, value)

    def get_paginated_response(self, data: Any) -> Response:
        older = self._link("before", self.rows[0].pk) if self.has_older and self.rows else None
        newer = self._link("after", self.rows[-1].pk) if self.has_newer and self.rows else None
        return Response({"older": older, "newer": newer, "results": data})

    def get_paginated_response_schema(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["older", "newer", "results"],
            "properties": {"older": link, "newer": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        def integer(name: str, description: str, maximum: int) -> dict[str, Any]:
            return {
                "name": name, "in": "query", "required": False, "description": description,
                "schema": {"type": "integer", "minimum": 1, "maximum": maximum},
            }  # fmt: skip

        return [
            integer("before", "Messages older than this message id (the `older` link)", MAX_DB_ID),
            integer("after", "Messages newer than this message id (the `newer` link; poll with it)", MAX_DB_ID),
            integer("limit", "Messages per page (default 50)", 200),
        ]


# --------------------------------------------------------------------------- views


class ContactList(ApiMixin, generics.ListAPIView):
    """Contacts, most recently active first; search by number or name, filter by handover, blocked,
    marketing opt-out or label. Role: read-only."""

    serializer_class = ContactSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[Contact]:
        filters = ContactFilters(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        contacts = Contact.objects.prefetch_related("labels").order_by(
            F("last_inbound_at").desc(nulls_last=True), "-pk"
        )
        search = (params.get("search") or "").strip()
        if search:
            match = Q(name__icontains=search) | Q(profile_name__icontains=search) | Q(wa_id__icontains=search)
            digits = phone_digits(search)
            if digits:
                match |= Q(wa_id__contains=digits)
            contacts = contacts.filter(match)
        for flag in ("needs_human", "blocked", "marketing_opt_out"):
            if flag in params:
                contacts = contacts.filter(**{flag: params[flag]})
        if "label" in params:
            if not Label.objects.filter(pk=params["label"]).exists():  # an empty list would hide the typo
                message = f"No label with id {params['label']}."
                raise ApiError(404, "not_found", message, {"label": [message]})
            contacts = contacts.filter(labels=params["label"])
        return contacts

    @extend_schema(
        parameters=[ContactFilters], responses={200: ContactSerializer(many=True), **error_responses(400, 404)}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ContactDetail(ApiMixin, generics.RetrieveAPIView):
    """One contact. Role: read-only."""

    serializer_class = ContactSerializer
    queryset = Contact.objects.prefetch_related("labels")

    @extend_schema(responses={200: ContactSerializer, **error_responses(404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ContactMessages(ApiMixin, generics.GenericAPIView):
    """A contact's conversation (GET, read-only role) and sending a message to it (POST, agent)."""

    serializer_class = MessageSerializer
    pagination_class = ConversationPagination
    queryset = Contact.objects.all()

    @extend_schema(
        summary="A contact's conversation, newest last",
        responses={200: MessageSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        page = self.paginate_queryset(Message.objects.filter(contact=contact))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Send a message to a contact (as the signed-in operator)",
        description=(
            "Give `text` for a plain message, `spec` for anything the bot can send, or `template` "
            "(+ `language`, `variables` by slot) for a synced approved template, whose variables are "
            "checked before anything is written (400 names the slot). The message is "
            "stored as pending and sent by the workers; follow its status in the conversation. "
            "409: the contact is blocked, no business number is configured, or the contact's 24-hour "
            "window is closed (then only a template spec can be sent)."
        ),
        request=SendMessageSerializer,
        responses={201: MessageSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        form = SendMessageSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        reply_to = data.get("reply_to")
        app_config_id = None
        if "template" in data:  # checked against the synced template before anything is written
            try:
                template = MessageTemplate.lookup(contact.app_config_id, data["template"], data.get("language"))
                spec = template.build_spec(data.get("variables", {}))
            except TemplateVariablesError as exc:
                field = f"variables.{exc.field[9:]}" if exc.field.startswith("template.") else exc.field
                raise ApiError(400, "invalid", f"{field}: {exc.message}", {field: [exc.message]}) from None
            app_config_id = template.app_config_id
        else:
            spec = {"type": "text", "body": data["text"]} if "text" in data else dict(data["spec"])

        def field_of(error: OutboundValidationError) -> str:
            if error.field.startswith("context"):
                return "reply_to"
            if "template" in data:
                return "template"
            return "text" if "text" in data else f"spec.{error.field}" if error.field else "spec"

        try:  # validate before looking at the contact's state: a broken message is a 400 first
            build_message(contact.wa_id, {**spec, "reply_to": reply_to} if reply_to is not None else spec)
        except OutboundValidationError as exc:
            raise ApiError(400, "invalid", f"{field_of(exc)}: {exc.message}", {field_of(exc): [exc.message]}) from None
        if contact.blocked:
            raise ApiError(409, "contact_blocked", f"Contact {contact.wa_id} is blocked; nothing was sent.")
        if spec.get("type") != "template" and not window_open(contact.last_inbound_at, timezone.now()):
            raise ApiError(
                409,
                "window_closed",
                f"Contact {contact.wa_id} has not written in the last 24 hours, so WhatsApp only accepts "
                "an approved template; nothing was sent.",
                {"spec.type" if "spec" in data else "text": ["outside the 24-hour window: send a template spec"]},
            )
        try:
            message = outbound.send_to_contact(
                contact, spec, sent_by=request.user.get_username(), reply_to=reply_to, app_config_id=app_config_id
            )
        except OutboundValidationError as exc:
            raise ApiError(400, "invalid", f"{field_of(exc)}: {exc.message}", {field_of(exc): [exc.message]}) from None
        except outbound.NoBusinessNumberError as exc:
            raise ApiError(409, "no_business_number", str(exc)) from None
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


def _label_error(exc: LabelError) -> ApiError:
    return ApiError(400, "invalid", exc.message, {exc.field: [exc.message]})


class LabelList(ApiMixin, generics.ListCreateAPIView):
    """Labels with how many contacts have each (GET, read-only role); create one (POST, agent)."""

    serializer_class = LabelSerializer
    pagination_class = PagePagination

    def get_queryset(self) -> QuerySet[Label]:
        return Label.objects.annotate(contact_count=Count("contacts")).order_by("name", "pk")

    @extend_schema(responses={200: LabelSerializer(many=True), **error_responses(400, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=LabelSerializer, responses={201: LabelSerializer, **error_responses(400, 409)})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        name = form.validated_data["name"]
        try:
            with transaction.atomic():
                label = form.save()
        except IntegrityError:  # the name is taken (also by a request racing this one)
            message = f"A label named {name!r} exists already."
            raise ApiError(409, "conflict", message, {"name": [message]}) from None
        label.contact_count = 0
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class ContactLabels(ApiMixin, generics.GenericAPIView):
    """Put labels on one contact and/or take them off (POST, agent); answers its labels now."""

    serializer_class = LabelChangeSerializer
    queryset = Contact.objects.all()

    @extend_schema(
        summary="Add and/or remove labels on a contact",
        operation_id="contact_labels_change",
        request=LabelChangeSerializer,
        responses={200: LabelChangeResultSerializer, **error_responses(400, 404)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        form = LabelChangeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            done = change_labels([contact.pk], **form.validated_data)
        except LabelError as exc:
            raise _label_error(exc) from None
        labels = LabelBriefSerializer(contact.labels.all(), many=True).data
        return Response({"contacts": 1, "added": done.added, "removed": done.removed, "labels": labels})


class BulkContactLabels(ApiMixin, generics.GenericAPIView):
    """Put labels on many contacts and/or take them off at once (POST, agent). An unknown contact
    or label id refuses the whole change."""

    serializer_class = BulkLabelChangeSerializer

    @extend_schema(
        summary="Add and/or remove labels on many contacts",
        operation_id="contacts_labels_bulk_change",
        request=BulkLabelChangeSerializer,
        responses={200: LabelChangeResultSerializer, **error_responses(400)},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = BulkLabelChangeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            done = change_labels(data["contacts"], add=data.get("add", ()), remove=data.get("remove", ()))
        except LabelError as exc:
            raise _label_error(exc) from None
        return Response({"contacts": done.contacts, "added": done.added, "removed": done.removed})


urlpatterns = [
    path("labels/", LabelList.as_view(), name="label-list"),
    path("contacts/labels/", BulkContactLabels.as_view(), name="contact-labels-bulk"),
    path("contacts/<int:pk>/labels/", ContactLabels.as_view(), name="contact-labels"),
    path("contacts/", ContactList.as_view(), name="contact-list"),
    path("contacts/<int:pk>/", ContactDetail.as_view(), name="contact-detail"),
    path("contacts/<int:pk>/messages/", ContactMessages.as_view(), name="contact-messages"),
]
