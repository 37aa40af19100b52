"""Builders of WhatsApp Cloud API webhook bodies, in exactly the shape Meta POSTs them.

Tests, benchmarks, the fake Graph API (status webhooks) and the developer simulator all need
inbound traffic that looks like Meta's, down to the envelope nesting, string timestamps and
``wamid.`` ids. Hand-written dicts drift from the real shape; these builders are the one place
that shape is written down.

Two levels:

* message builders (``text``, ``button_reply``, ``list_reply``, ``image`` ...) return the
  inner message dict found at ``entry[].changes[].value.messages[]``; ``status`` returns one
  item of ``value.statuses[]``;
* envelope builders wrap them: ``webhook_body`` (one entry, one change), ``change`` and
  ``batch`` (several entries/changes in one POST, as Meta batches under load), and
  ``signed_request`` (raw bytes + headers, signed like Meta signs them).

Pure module: no Django, no I/O. Defaults for ``wamid`` and ``timestamp`` are fresh (random id,
current time) so repeated calls never collide on the ``wamid`` UNIQUE constraint; pass them
explicitly for byte-for-byte reproducible payloads.

One module per concept: ``common`` (ids, checks, ``Context``), ``errors`` (Meta's error codes
as worded in webhooks and fake responses), ``messages`` (inbound messages), ``envelopes``
(statuses, envelopes, signing). Import from the package; the split is for reading.
"""

from __future__ import annotations

from .common import (
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_PROFILE_NAME,
    DEFAULT_WA_ID,
    DEFAULT_WABA_ID,
    Context,
    MessageStatus,
    PayloadError,
    new_wamid,
)
from .envelopes import (
    batch,
    change,
    serialize,
    signed_request,
    status,
    user_preference,
    user_preferences_change,
    webhook_body,
)
from .errors import (
    META_ERRORS,
    MetaErrorInfo,
    error_object,
    meta_error,
)
from .messages import (
    audio,
    button_reply,
    contact_card,
    contacts_message,
    document,
    image,
    list_reply,
    location,
    nfm_reply,
    order,
    order_item,
    reaction,
    referral_text,
    sticker,
    system,
    template_button,
    text,
    unsupported,
    video,
)

__all__ = [
    "DEFAULT_DISPLAY_PHONE_NUMBER",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_PROFILE_NAME",
    "DEFAULT_WABA_ID",
    "DEFAULT_WA_ID",
    "META_ERRORS",
    "Context",
    "MessageStatus",
    "MetaErrorInfo",
    "PayloadError",
    "audio",
    "batch",
    "button_reply",
    "change",
    "contact_card",
    "contacts_message",
    "document",
    "error_object",
    "image",
    "list_reply",
    "location",
    "meta_error",
    "new_wamid",
    "nfm_reply",
    "order",
    "order_item",
    "reaction",
    "referral_text",
    "serialize",
    "signed_request",
    "status",
    "sticker",
    "system",
    "template_button",
    "text",
    "unsupported",
    "user_preference",
    "user_preferences_change",
    "video",
    "webhook_body",
]
