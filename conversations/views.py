"""Serving stored media to staff: the inbox and admin show a user's image, voice note or
document through this view, never through a public URL."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest

from conversations.models import MediaStatus, MessageMedia
from whatsappcrm_backend.api import Role, user_role

# Shown in the page (players, previews); anything else is downloaded, never rendered.
_INLINE_PREFIXES = ("image/", "audio/", "video/")


@staff_member_required
def media(request: HttpRequest, message_id: int) -> FileResponse:
    """The stored file of inbound message ``message_id`` (``conversations:media``).

    Anonymous users are sent to the admin login. Staff who may read conversations see it: an
    operator role (read-only, agent, admin: the roles the inbox and the API use) or the model
    permission to view messages; other staff get 403.
    """
    if user_role(request.user) < Role.READ_ONLY and not request.user.has_perm("conversations.view_message"):
        raise PermissionDenied("You may not view conversations.")
    row = MessageMedia.objects.filter(message_id=message_id, status=MediaStatus.STORED).first()
    if row is None or not row.file:
        raise Http404("No stored media for this message.")
    mime = row.mime_type.split(";", 1)[0].strip() or "application/octet-stream"
    inline = mime.startswith(_INLINE_PREFIXES)
    response = FileResponse(row.file.open("rb"), content_type=mime, as_attachment=not inline,
                            filename=row.filename or row.file.name.rsplit("/", 1)[-1])
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
