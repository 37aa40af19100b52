"""The inbox's pages and JSON endpoints, mounted at ``/admin/inbox/`` behind admin's login.

Thin: each view checks the role (POSTs need an agent or admin: 403 otherwise, whatever the
page showed), calls one service function and renders. The page's script (static
``inbox/inbox.js``) polls ``poll/`` and posts the forms with the CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from conversations.models import Contact, Label
from inbox import services
from inbox.models import AuditEvent, CannedResponse, Conversation, ConversationStatus
from inbox.permissions import agents, can_act, inbox_role
from inbox.presenters import bubble
from meta_integration.models import MetaAppConfig

__all__ = ["urlpatterns_views"]

LIST_PAGE_SIZE = 50


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """Admin's own context (site header, user links) plus the page's."""
    return {**admin.site.each_context(request), "can_act": can_act(request.user), **extra}


def _agent_only(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_act(request.user):
            return JsonResponse(
                {"ok": False, "error": f"Your account is {inbox_role(request.user).label}: it may look, not act."},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapped


def _error(exc: services.InboxError) -> JsonResponse:
    return JsonResponse({"ok": False, "error": exc.message, "field": exc.field}, status=400 if exc.field else 409)


def _conversation(pk: int) -> Conversation:
    row = services.annotate_status(Conversation.objects.select_related("contact", "app_config", "assignee")).filter(
        pk=pk
    ).first()
    if row is None:
        raise Http404("No such conversation")
    return row


# --------------------------------------------------------------------------- pages


@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    services.sync_conversations()
    filters = services.ListFilters.from_query(request.GET)
    page = Paginator(services.conversation_list(request.user, filters), LIST_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = list(page.object_list)
    services.attach_last_messages(rows)
    now = timezone.now()
    for row in rows:
        row.window_left = services.window_left(row.last_in_at, now)
    return render(request, "inbox/list.html", _context(
        request, title="Inbox", page=page, rows=rows, filters=filters,
        numbers=MetaAppConfig.objects.order_by("name").only("pk", "name", "display_phone_number"),
        labels=Label.objects.all(), views=[
            ("all", "All"), ("mine", "Mine"), ("unassigned", "Unassigned"), ("waiting", "Waiting"),
            ("resolved", "Resolved"),
        ],
    ))


def _side_panel(request: HttpRequest, conversation: Conversation) -> str:
    return render_to_string("inbox/_side.html", {
        "c": conversation,
        "can_act": can_act(request.user),
        "contact_labels": list(conversation.contact.labels.all()),
        "all_labels": list(Label.objects.all()),
        "agents": list(agents()) if can_act(request.user) else [],
        "audit": list(AuditEvent.objects.filter(conversation=conversation).order_by("-created_at", "-pk")[:30]),
        "window_left": services.window_left(services.last_inbound_at(conversation)),
    }, request=request)


def _composer_state(conversation: Conversation) -> dict[str, Any]:
    """The reply box's state: the window's seconds left (the page switches to templates when
    it runs out, without waiting for a poll) and the approved templates with their slots."""
    return {
        "window_left": services.window_left(services.last_inbound_at(conversation)),
        "templates": [
            {"id": t.pk, "name": t.name, "language": t.language, "category": t.category,
             "slots": [{"key": s.key, "label": s.label, "example": s.example} for s in t.slots()]}
            for t in services.sendable_templates(conversation)
        ],
    }  # fmt: skip


def _items_html(request: HttpRequest, page: services.TimelinePage) -> str:
    return render_to_string("inbox/_items.html", {"items": [
        (kind, bubble(obj, page.quoted) if kind == "message" else obj) for _at, _order, kind, obj in page.items()
    ]}, request=request)


@require_GET
def conversation_view(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(pk)
    page = services.timeline_page(conversation)
    last_id = page.messages[-1].pk if page.messages else 0
    services.mark_read(conversation, request.user, last_id)
    return render(request, "inbox/conversation.html", _context(
        request, title=str(conversation.contact), c=conversation,
        items_html=_items_html(request, page), has_older=page.has_older,
        oldest_id=page.messages[0].pk if page.messages else 0, last_id=last_id,
        watched={m.pk: m.status for m in page.messages if m.direction == "out" and not services.status_is_final(
            m.status)},
        last_note=max((n.pk for n in page.notes), default=_max_pk(conversation, "notes")),
        last_event=max((e.pk for e in page.events), default=_max_pk(conversation, "audit_events")),
        side_html=_side_panel(request, conversation), composer=_composer_state(conversation),
        status_labels=dict(ConversationStatus.choices),
    ))


def _max_pk(conversation: Conversation, relation: str) -> int:
    last = getattr(conversation, relation).order_by("-pk").values_list("pk", flat=True).first()
    return last or 0


@require_GET
def contact_conversation(request: HttpRequest, contact_id: int) -> HttpResponse:
    """From a contact (admin's contact page, a link): its conversation on the number it last
    wrote to."""
    contact = get_object_or_404(Contact, pk=contact_id)
    try:
        conversation = services.conversation_for_contact(contact)
    except services.InboxError as exc:
        raise Http404(exc.message) from None
    return redirect("inbox:conversation", pk=conversation.pk)


# --------------------------------------------------------------------------- JSON


def _int(value: Any, default: int = 0) -> int:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else default


@require_GET
def older(request: HttpRequest, pk: int) -> JsonResponse:
    conversation = get_object_or_404(Conversation, pk=pk)
    page = services.timeline_page(conversation, before=_int(request.GET.get("before")) or None)
    return JsonResponse({
        "html": _items_html(request, page), "has_older": page.has_older,
        "oldest_id": page.messages[0].pk if page.messages else 0,
        "watch": {m.pk: m.status for m in page.messages if m.direction == "out"
                  and not services.status_is_final(m.status)},
    })  # fmt: skip


def _known_statuses(raw: str) -> dict[int, str]:
    """``12:sent,15:delivered`` -> {12: "sent", 15: "delivered"} (malformed pairs skipped)."""
    known: dict[int, str] = {}
    for pair in raw.split(",")[: services.MAX_WATCHED_STATUSES]:
        message_id, _, status = pair.partition(":")
        if message_id.isdigit() and len(message_id) < 19 and status.isalpha() and len(status) < 16:
            known[int(message_id)] = status
    return known


@require_GET
def poll(request: HttpRequest, pk: int) -> JsonResponse:
    """Anything new since the page last looked; ``{"changed": false}`` costs one query."""
    result = services.poll(
        pk,
        after=_int(request.GET.get("after")),
        known_statuses=_known_statuses(request.GET.get("st", "")),
        version=_int(request.GET.get("v")),
        note_after=_int(request.GET.get("n")),
        event_after=_int(request.GET.get("e")),
    )
    if result is None:
        raise Http404("No such conversation")
    if not result.changed:
        return JsonResponse({"changed": False, "version": result.version})
    conversation = _conversation(pk)
    page = services.TimelinePage(result.messages, result.notes, result.events, False, result.quoted)
    if result.messages:
        services.mark_read(conversation, request.user, result.messages[-1].pk)
    redrawn = services.related_messages([*result.statuses, *result.replaced])  # their quotes
    body: dict[str, Any] = {
        "changed": True,
        "version": result.version,
        "html": _items_html(request, page),
        "last_id": result.messages[-1].pk if result.messages else None,
        "statuses": [
            {"id": m.pk, "status": m.status, "html": render_to_string(
                "inbox/_message.html", {"b": bubble(m, redrawn)}, request=request)}
            for m in result.statuses
        ],
        "replaced": [
            {"id": m.pk, "html": render_to_string("inbox/_message.html", {"b": bubble(m, redrawn)}, request=request)}
            for m in result.replaced
        ],
        "watch": {m.pk: m.status for m in result.messages if m.direction == "out"
                  and not services.status_is_final(m.status)},
        "last_note": max((n.pk for n in result.notes), default=None),
        "last_event": max((e.pk for e in result.events), default=None),
    }
    if result.version != _int(request.GET.get("v")) or result.messages:
        body["side_html"] = _side_panel(request, conversation)
        body["composer"] = _composer_state(conversation)
    return JsonResponse(body)


@require_GET
def canned(request: HttpRequest) -> JsonResponse:
    """Canned responses matching ``q`` (shortcut or text), for the reply box's ``/`` search."""
    query = (request.GET.get("q") or "").strip()[:50]
    rows = CannedResponse.objects.all()
    if query:
        rows = rows.filter(Q(shortcut__icontains=query) | Q(text__icontains=query))
    return JsonResponse({"results": [{"shortcut": r.shortcut, "text": r.text} for r in rows[:10]]})


@require_POST
@_agent_only
def send(request: HttpRequest, pk: int) -> JsonResponse:
    conversation = get_object_or_404(Conversation.objects.select_related("contact"), pk=pk)
    try:
        message = services.send_text(
            conversation, request.user, request.POST.get("text", ""), request.POST.get("reply_to", "")
        )
    except services.InboxError as exc:
        return _error(exc)
    return JsonResponse({"ok": True, "id": message.pk, "status": message.status})


@require_POST
@_agent_only
def attach(request: HttpRequest, pk: int) -> JsonResponse:
    """A file from the operator's computer: uploaded to Meta, then sent."""
    conversation = get_object_or_404(Conversation.objects.select_related("contact", "app_config"), pk=pk)
    upload = request.FILES.get("file")
    if upload is None:
        return _error(services.InboxError("Choose a file to send.", "file"))
    if upload.size > services.MAX_UPLOAD_BYTES:
        return _error(services.InboxError("WhatsApp does not send files over 100 MB.", "file"))
    try:
        message = services.send_attachment(
            conversation, request.user, upload.name or "file", upload.content_type or "", upload.read(),
            request.POST.get("caption", ""),
        )
    except services.InboxError as exc:
        return _error(exc)
    return JsonResponse({"ok": True, "id": message.pk, "status": message.status})


@require_POST
@_agent_only
def send_template(request: HttpRequest, pk: int) -> JsonResponse:
    conversation = get_object_or_404(Conversation.objects.select_related("contact"), pk=pk)
    values = {key[len("var:"):]: value for key, value in request.POST.items() if key.startswith("var:")}
    try:
        message = services.send_template(conversation, request.user, _int(request.POST.get("template")), values)
    except services.InboxError as exc:
        return _error(exc)
    return JsonResponse({"ok": True, "id": message.pk, "status": message.status})


@require_POST
@_agent_only
def action(request: HttpRequest, pk: int) -> JsonResponse:
    """Take over, release, resolve, assign, note, label: one endpoint, ``action`` says which."""
    conversation = get_object_or_404(Conversation.objects.select_related("contact", "assignee"), pk=pk)
    name = request.POST.get("action", "")
    user = request.user
    handlers: dict[str, Callable[[], Any]] = {
        "take_over": lambda: services.take_over(conversation, user),
        "release": lambda: services.release(conversation, user, request.POST.get("message", "")),
        "resolve": lambda: services.resolve(conversation, user),
        "assign": lambda: services.assign(conversation, user, _int(request.POST.get("agent")) or None),
        "note": lambda: services.add_note(conversation, user, request.POST.get("text", "")),
        "label_add": lambda: services.add_label(conversation, user, _int(request.POST.get("label"))),
        "label_remove": lambda: services.remove_label(conversation, user, _int(request.POST.get("label"))),
    }
    handler = handlers.get(name)
    if handler is None:
        return JsonResponse({"ok": False, "error": f"Unknown action {name[:40]!r}.", "field": "action"}, status=400)
    try:
        handler()
    except services.InboxError as exc:
        return _error(exc)
    return JsonResponse({"ok": True})


def urlpatterns_views() -> list:
    """The routes, each wrapped in ``admin.site.admin_view`` (login, staff, CSRF)."""
    wrap = admin.site.admin_view
    return [
        path("", wrap(conversation_list), name="list"),
        path("canned/", wrap(canned), name="canned"),
        path("contact/<int:contact_id>/", wrap(contact_conversation), name="contact"),
        path("<int:pk>/", wrap(conversation_view), name="conversation"),
        path("<int:pk>/older/", wrap(older), name="older"),
        path("<int:pk>/poll/", wrap(poll), name="poll"),
        path("<int:pk>/send/", wrap(send), name="send"),
        path("<int:pk>/template/", wrap(send_template), name="template"),
        path("<int:pk>/attach/", wrap(attach), name="attach"),
        path("<int:pk>/action/", wrap(action), name="action"),
    ]
