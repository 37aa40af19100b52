"""Meta webhook signatures (X-Hub-Signature-256).

Meta signs every webhook POST with HMAC-SHA256 of the *raw* request body, keyed with the
app secret, and sends it as ``X-Hub-Signature-256: sha256=<hex>``. The check must run on the
bytes exactly as received (before any JSON parsing, which would change whitespace and key
order) and must compare in constant time so the digest cannot be guessed byte by byte.

Pure module: no Django, no I/O, so the fake Graph API and tests can import it directly.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
"""Name of the HTTP header Meta puts the signature in."""

_PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DIGEST_HEX_LEN = hashlib.sha256().digest_size * 2  # 64


def _digest(body: bytes, app_secret: str) -> str:
    return hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_body(body: bytes, app_secret: str) -> str:
    """Return the ``X-Hub-Signature-256`` header value Meta would send for ``body``.

    Used by the fake Graph API (to sign the webhooks it delivers) and by tests.
    """
    return _PREFIX + _digest(body, app_secret)


def verify_signature(body: bytes, header: str | None, app_secret: str) -> bool:
    """True only if ``header`` is a well-formed, correct signature of ``body``.

    Never raises: a missing, empty or malformed header (no ``sha256=`` prefix, wrong length,
    non-hex digits, wrong type) is simply not a valid signature, so the webhook view can
    answer 403 without special-casing. An empty app secret never verifies, so a missing
    setting cannot silently accept unsigned traffic.
    """
    if not isinstance(header, str) or not isinstance(body, (bytes, bytearray)):
        return False
    if not isinstance(app_secret, str) or not app_secret:
        return False
    header = header.strip()
    if not header.startswith(_PREFIX):
        return False
    received = header[len(_PREFIX) :]
    if len(received) != _DIGEST_HEX_LEN or not _HEX_DIGITS.issuperset(received):
        return False
    expected = _digest(bytes(body), app_secret)
    # Hex digests are case-insensitive; Meta sends lowercase but normalise anyway.
    return hmac.compare_digest(expected, received.lower())
