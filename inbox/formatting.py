"""WhatsApp's text formatting as safe HTML: escape first, then the markers.

WhatsApp renders ``*bold*``, ``_italic_``, ``~strike~`` and ````` ```monospace``` `````; a
marker counts only when it hugs non-space text and is not inside a word (``snake_case_name``
stays as typed). Everything the user wrote is escaped before any tag is added, so a
``<script>`` in a message is text, and the only tags in the result are the ones added here.
Pure: no Django state besides ``escape`` / ``mark_safe``.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["whatsapp_html"]

_MONO = re.compile(r"```(.+?)```", re.DOTALL)
_INLINE = [
    (re.compile(r"(?<![\w*])\*(?=\S)([^\n]*?\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^\n]*?\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^\n]*?\S)~(?![\w~])"), "del"),
]
# A single-character span ("*a*") is also formatting in WhatsApp.
_INLINE_ONE = [
    (re.compile(r"(?<![\w*])\*(\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(\S)~(?![\w~])"), "del"),
]


def _inline(escaped: str) -> str:
    for pattern, tag in _INLINE:
        escaped = pattern.sub(rf"<{tag}>\1</{tag}>", escaped)
    for pattern, tag in _INLINE_ONE:
        escaped = pattern.sub(rf"<{tag}>\1</{tag}>", escaped)
    return escaped


def whatsapp_html(text: str | None) -> SafeString:
    """``text`` as HTML that looks like WhatsApp shows it (newlines are kept by the CSS:
    ``white-space: pre-wrap``). Inside a monospace block nothing else is formatted."""
    if not text:
        return mark_safe("")
    out = []
    for index, part in enumerate(_MONO.split(str(text))):
        if index % 2:
            out.append(f"<code>{escape(part)}</code>")
        else:
            out.append(_inline(str(escape(part))))
    return mark_safe("".join(out))  # noqa: S308 - every piece of input was escaped above
