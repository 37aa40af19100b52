"""What to do after Meta refused a send: retry or give up, and how long to wait. Pure.

The error classes come from ``errors.classify_error`` (Meta's codes in one table); this
module adds the budget: how many attempts each class and code gets, and the backoff.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import StrEnum

from meta_integration.errors import ErrorClass

__all__ = [
    "BULK_SEND_CODES",
    "CODE_ATTEMPT_LIMITS",
    "PAIR_BACKOFF_FACTOR",
    "BulkAction",
    "attempt_limit",
    "backoff_seconds",
    "bulk_action",
    "should_retry",
]

# Codes that are transient but should not be retried for long (Meta: "try again" a few times).
CODE_ATTEMPT_LIMITS: dict[int, int] = {131000: 3}
PAIR_BACKOFF_FACTOR = 6  # 131056: Meta allows about one message per 6 s to one user


def backoff_seconds(
    attempt: int, *, base: float, cap: float, factor: float = 1.0, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random.

    The fixed half keeps a retry from coming back at once; the random half keeps the many
    messages hit by one outage from retrying in lockstep.
    """
    if attempt < 1:
        raise ValueError(f"attempt: counts from 1, got {attempt}")
    step = min(cap, base * factor * 2 ** (attempt - 1))
    return step / 2 + rand() * step / 2


def attempt_limit(code: int | None, max_retries: int) -> int:
    """How many attempts a message gets in total for an error with this Meta code."""
    return min(max_retries + 1, CODE_ATTEMPT_LIMITS.get(code, max_retries + 1)) if code is not None else max_retries + 1


def should_retry(error_class: ErrorClass, code: int | None, attempts: int, max_retries: int) -> bool:
    """Retry only what may succeed later, and only within the attempt budget."""
    if error_class not in (ErrorClass.TRANSIENT, ErrorClass.PAIR_RATE_LIMIT):
        return False
    return attempts < attempt_limit(code, max_retries)


class BulkAction(StrEnum):
    """What a bulk send (a campaign) does about a Meta code, beyond the message's own retry."""

    BACK_OFF_PAIR = "back_off_pair"  # hold this user back and retry (delivery does it for every send)
    PAUSE_SENDER = "pause_sender"  # stop the campaign: the number is restricted
    FAIL_RECIPIENT = "fail_recipient"  # this recipient fails; "retry failed" leaves it alone


# Meta's limits that matter to campaigns, as Meta's error-code reference describes them.
BULK_SEND_CODES: dict[int, tuple[BulkAction, str]] = {
    131056: (BulkAction.BACK_OFF_PAIR, "Pair rate limit: too many messages to this user in a short time; "
             "Meta advises waiting before sending to the same number again"),
    131048: (BulkAction.PAUSE_SENDER, "Spam rate limit: too many earlier messages from this number were "
             "blocked or flagged as spam; Meta restricts how many it may send (check its quality rating)"),
    131049: (BulkAction.FAIL_RECIPIENT, "Not delivered to maintain healthy ecosystem engagement (per-user "
             "marketing limit); Meta advises not to resend it right away"),
    131050: (BulkAction.FAIL_RECIPIENT, "The user stopped receiving marketing messages from this business"),
}


def bulk_action(code: int | None) -> BulkAction | None:
    return BULK_SEND_CODES[code][0] if code in BULK_SEND_CODES else None
