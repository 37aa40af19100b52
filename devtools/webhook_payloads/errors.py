"""Meta's error codes as its Cloud API words them, for failed statuses and fake error responses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .common import ERROR_DOCS_URL, PayloadError


@dataclass(frozen=True)
class MetaErrorInfo:
    """How Meta words one error code, and the HTTP status its API answers it with.

    Whether to retry is not decided here: ``errors.classify_error`` owns that rule.
    """

    code: int
    title: str
    details: str
    http_status: int

    @property
    def message(self) -> str:
        """The ``error.message`` of a Graph API error response: ``(#code) title``."""
        return f"(#{self.code}) {self.title}"


def _errors(*infos: MetaErrorInfo) -> Mapping[int, MetaErrorInfo]:
    return {info.code: info for info in infos}


# Error codes the project handles, worded as Meta's Cloud API words them.
META_ERRORS: Mapping[int, MetaErrorInfo] = _errors(
    MetaErrorInfo(1, "API Unknown", "Invalid request or possible server error.", 500),
    MetaErrorInfo(
        2, "API Service", "Temporary due to downtime or due to being overloaded.", 503
    ),
    MetaErrorInfo(
        4, "API Too Many Calls",
        "The app has reached its API call rate limit.", 429,
    ),
    MetaErrorInfo(
        10, "Permission Denied",
        "Permission is either not granted or has been removed.", 403,
    ),
    MetaErrorInfo(100, "Invalid parameter", "Invalid parameter.", 400),
    MetaErrorInfo(
        190, "Access token has expired",
        "Error validating access token: Session has expired.", 401,
    ),
    MetaErrorInfo(
        368, "Temporarily blocked for policies violations",
        "The WhatsApp Business Account associated with the app has been restricted or "
        "disabled for violating a platform policy.", 403,
    ),
    MetaErrorInfo(
        80007, "Rate limit issues",
        "The WhatsApp Business Account has reached its rate limit.", 429,
    ),
    MetaErrorInfo(
        130429, "Rate limit hit",
        "Cloud API message throughput has been reached.", 429,
    ),
    MetaErrorInfo(
        130472, "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment.",
        400,
    ),
    MetaErrorInfo(
        131000, "Something went wrong",
        "Message failed to send due to an unknown error.", 500,
    ),
    MetaErrorInfo(
        131005, "Access denied",
        "Permission is either not granted or has been removed.", 403,
    ),
    MetaErrorInfo(
        131008, "Required parameter is missing",
        "The request is missing a required parameter.", 400,
    ),
    MetaErrorInfo(
        131009, "Parameter value is not valid",
        "One or more parameter values are invalid.", 400,
    ),
    MetaErrorInfo(
        131016, "Service unavailable",
        "A service is temporarily unavailable.", 503,
    ),
    MetaErrorInfo(
        131021, "Recipient cannot be sender",
        "Sender and recipient phone number is the same.", 400,
    ),
    MetaErrorInfo(131026, "Message undeliverable", "Message Undeliverable.", 400),
    MetaErrorInfo(
        131030, "Recipient phone number not in allowed list",
        "Recipient phone number not in allowed list: Add recipient phone number to "
        "recipient list and try again.", 400,
    ),
    MetaErrorInfo(
        131031, "Account has been locked",
        "The WhatsApp Business Account associated with the app has been restricted or "
        "disabled for violating a platform policy.", 403,
    ),
    MetaErrorInfo(
        131047, "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.", 400,
    ),
    MetaErrorInfo(
        131048, "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages can be "
        "sent from this phone number. This may be because too many previous messages were "
        "blocked or flagged as spam.", 400,
    ),
    MetaErrorInfo(
        131049, "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be "
        "delivered.", 400,
    ),
    MetaErrorInfo(
        131051, "Message type unknown", "Message type is currently not supported.", 400
    ),
    MetaErrorInfo(
        131052, "Media download error",
        "Unable to download the media sent by the user.", 400,
    ),
    MetaErrorInfo(
        131053, "Media upload error", "Unable to upload the media used in the message.", 400
    ),
    MetaErrorInfo(
        131056, "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.", 429,
    ),
    MetaErrorInfo(
        132000, "Number of parameters does not match the expected number of params",
        "The number of variable parameter values included in the request did not match the "
        "number of variable parameters defined in the template.", 400,
    ),
    MetaErrorInfo(
        132001, "Template name does not exist in the translation",
        "The template does not exist in the specified language or the template has not "
        "been approved.", 404,
    ),
    MetaErrorInfo(
        132012, "Parameter format does not match format in the created template",
        "Variable parameter values formatted incorrectly: the header's media type or a "
        "parameter's format differs from the template's.", 400,
    ),
    MetaErrorInfo(
        132015, "Template is Paused",
        "Template is paused due to low quality so it cannot be sent in a template message.", 400,
    ),
    MetaErrorInfo(
        132016, "Template is Disabled",
        "Template has been paused too many times due to low quality and is now permanently "
        "disabled.", 400,
    ),
    MetaErrorInfo(
        133010, "Account not registered",
        "The phone number is not registered on the WhatsApp Business Platform.", 400,
    ),
)


def meta_error(code: int) -> MetaErrorInfo:
    """Look up how Meta words ``code``; unknown codes get a generic but well-formed entry.

    Unknown codes are allowed (Meta adds codes all the time and a test may script one we do
    not know yet); they answer HTTP 400 with a neutral title.
    """
    if not isinstance(code, int) or isinstance(code, bool) or code <= 0:
        raise PayloadError("code", f"must be a positive int, got {code!r}")
    return META_ERRORS.get(code) or MetaErrorInfo(code, "Error", f"Error code {code}.", 400)


def error_object(code: int, details: str | None = None) -> dict[str, Any]:
    """One item of a webhook ``errors[]`` array (failed status, unsupported message)."""
    info = meta_error(code)
    return {
        "code": info.code,
        "title": info.title,
        "message": info.title,
        "error_data": {"details": details if details is not None else info.details},
        "href": ERROR_DOCS_URL,
    }
