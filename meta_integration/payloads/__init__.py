"""Pure parser of WhatsApp Cloud API webhook bodies into typed, immutable records.

Meta POSTs ``{"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes":
[{"field": "messages", "value": {...}}]}]}``; one body can carry several entries, changes,
messages and statuses. The webhook view needs two guarantees from this package:

* A body that is not a WhatsApp webhook at all (not an object, wrong ``object``, no
  ``entry`` list) raises :class:`PayloadError`, so the view can answer 400.
* Anything inside a valid envelope never raises. Meta retries a non-200 for days, so one odd
  message must not block the others delivered with it: a message whose *content* does not
  parse is kept as ``MessageType.UNKNOWN`` with its raw dict and a ``parse_error``; an item
  that cannot even be identified (no wamid, no sender, no timestamp) is described in
  ``WebhookBatch.problems`` for logging.

No Django, no I/O: the records are frozen dataclasses (modelled on pywa's ``pywa/types``)
built by ``from_dict`` classmethods, so the parser is testable with plain dicts.

One module per concept; this package's names are its public API:

* ``fields`` — the envelope constants, ``PayloadError`` and the total field readers;
* ``errors`` — ``ApiError``, Meta's error objects;
* ``message_content`` — ``MessageType`` and the records of a message's content;
* ``messages`` — ``InboundMessage``;
* ``statuses`` — ``DeliveryStatus`` and ``StatusUpdate`` (with conversation and pricing);
* ``preferences`` — ``UserPreference`` (marketing stop / resume);
* ``batch`` — ``parse_webhook`` and the ``WebhookBatch`` it returns.
"""

from meta_integration.payloads.batch import OtherChange, WebhookBatch, parse_webhook
from meta_integration.payloads.errors import ApiError
from meta_integration.payloads.fields import (
    CALLBACK_PREFIX,
    WABA_OBJECT,
    PayloadError,
    is_wa_id,
    parse_callback_message_id,
)
from meta_integration.payloads.message_content import (
    Context,
    Edit,
    InteractiveKind,
    InteractiveReply,
    Location,
    Media,
    MessageType,
    Order,
    ProductItem,
    Reaction,
    Referral,
    ReferredProduct,
    Revoke,
    SharedContact,
    SharedContactPhone,
    SystemEvent,
    TemplateButton,
)
from meta_integration.payloads.messages import InboundMessage
from meta_integration.payloads.preferences import PreferenceValue, UserPreference
from meta_integration.payloads.statuses import Conversation, DeliveryStatus, Pricing, StatusUpdate

__all__ = [
    "CALLBACK_PREFIX",
    "WABA_OBJECT",
    "ApiError",
    "Context",
    "Conversation",
    "DeliveryStatus",
    "Edit",
    "InboundMessage",
    "InteractiveKind",
    "InteractiveReply",
    "Location",
    "Media",
    "MessageType",
    "Order",
    "OtherChange",
    "PayloadError",
    "PreferenceValue",
    "Pricing",
    "ProductItem",
    "Reaction",
    "Referral",
    "ReferredProduct",
    "Revoke",
    "SharedContact",
    "SharedContactPhone",
    "StatusUpdate",
    "SystemEvent",
    "TemplateButton",
    "UserPreference",
    "WebhookBatch",
    "is_wa_id",
    "parse_callback_message_id",
    "parse_webhook",
]
