"""Meta's error table: which Graph API failures to retry, slow down for, or give up on.

:func:`classify_error` maps Meta's error code (and, without one, the HTTP status) to an
:class:`ErrorClass`; the Graph API client and the send path act on the class, and
``retry_policy`` sets the retry budget per class. One table, so a new code is learnt once.

Pure module: no Django, no I/O.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AUTH_CODES",
    "PAIR_RATE_LIMIT_CODES",
    "PERMANENT_CODES",
    "TRANSIENT_CODES",
    "ErrorClass",
    "classify_error",
]


class ErrorClass(StrEnum):
    """What the send task should do with a failed Graph API call."""

    TRANSIENT = "transient"  # retry with backoff
    PAIR_RATE_LIMIT = (
        "pair_rate_limit"  # retry later, slower: too many messages to this user
    )
    AUTH = "auth"  # stop: token/permission problem, an operator must act
    PERMANENT = "permanent"  # mark failed with Meta's code, never retry blindly


TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        1,  # API Unknown: possibly temporary downtime
        2,  # API Service: temporary downtime or overload
        4,  # API Too Many Calls: app-level rate limit
        80007,  # Rate limit issues: WhatsApp Business Account rate limit
        130429,  # Rate limit hit: Cloud API throughput reached
        131000,  # Something went wrong: unknown error, Meta advises trying again
        131016,  # Service unavailable: Meta's service is temporarily down
        131057,  # Account in maintenance mode (e.g. a throughput upgrade)
        133004,  # Server temporarily unavailable (Meta says check status and try later)
    }
)

PAIR_RATE_LIMIT_CODES: frozenset[int] = frozenset(
    {
        131056,  # (Business account, consumer account) pair rate limit hit: too many to one user
    }
)

AUTH_CODES: frozenset[int] = frozenset(
    {
        0,  # AuthException: could not authenticate the app user (token invalid/expired)
        3,  # API Method: capability or permissions issue
        10,  # Permission denied: permission not granted or removed
        190,  # Access token has expired
        *range(200, 300),  # API Permission (200-299): permission not granted or removed
        131005,  # Access denied: permission not granted or removed
    }
)

PERMANENT_CODES: frozenset[int] = frozenset(
    {
        100,  # Invalid parameter: unsupported/misspelled parameter or not a WhatsApp number
        368,  # Temporarily blocked for policies violations
        470,  # Message expired / outside the 24-hour window (legacy on-premises code)
        130472,  # User's number is part of an experiment (marketing templates)
        130497,  # Business account is restricted from messaging users in this country
        131008,  # Required parameter is missing
        131009,  # Parameter value is not valid
        131021,  # Recipient cannot be sender
        131026,  # Message undeliverable: not on WhatsApp, old app, or terms not accepted
        131031,  # Business account has been locked
        131037,  # Display name needs approval
        131042,  # Business eligibility payment issue
        131045,  # Incorrect certificate (phone number not registered)
        131047,  # Re-engagement message: >24 h since the user last wrote; send a template
        131048,  # Spam rate limit hit: sending restricted for quality reasons
        131049,  # Meta chose not to deliver (per-user marketing limit)
        131050,  # User stopped receiving marketing messages
        131051,  # Unsupported message type
        131052,  # Media download error: could not download the user's media
        131053,  # Media upload error: could not upload the media we sent (type, size, URL)
        135000,  # Generic user error
    }
)
# Whole families that are permanent: 132xxx are template errors (132000 parameter count,
# 132001 missing or not approved, 132012 parameter format, 132015 paused, 132016 disabled),
# 133xxx are phone-registration errors (except 133004 above).
_PERMANENT_RANGES = (range(132000, 133000), range(133000, 134000))


def classify_error(http_status: int | None, meta_code: int | None) -> ErrorClass:
    """Classify a failed send by Meta's error code first (it says *why*), then by HTTP status.

    ``http_status`` is None when no response arrived (timeout, connection error).
    """
    if meta_code is not None:
        if meta_code in PAIR_RATE_LIMIT_CODES:
            return ErrorClass.PAIR_RATE_LIMIT
        if meta_code in AUTH_CODES:
            return ErrorClass.AUTH
        if meta_code in TRANSIENT_CODES:
            return ErrorClass.TRANSIENT
        if meta_code in PERMANENT_CODES or any(
            meta_code in r for r in _PERMANENT_RANGES
        ):
            return ErrorClass.PERMANENT
    if http_status is None:
        return ErrorClass.TRANSIENT
    if http_status == 401:
        return ErrorClass.AUTH
    if http_status == 429 or 500 <= http_status <= 599:
        return ErrorClass.TRANSIENT
    return ErrorClass.PERMANENT
