"""WhatsApp formatting as safe HTML (inbox/formatting.py): escaped first, then the markers."""

from __future__ import annotations

import pytest

from inbox.formatting import whatsapp_html


@pytest.mark.parametrize("text, html", [
    ("*bold* _italic_ ~strike~", "<strong>bold</strong> <em>italic</em> <del>strike</del>"),
    ("*a*", "<strong>a</strong>"),
    ("*bold _and italic_*", "<strong>bold <em>and italic</em></strong>"),
    ("```x = *y*```", "<code>x = *y*</code>"),
    ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),  # inside words: as typed
    ("* not bold *", "* not bold *"),  # markers must hug the text
    ("*one\ntwo*", "*one\ntwo*"),  # not across lines
    ("line one\nline _two_", "line one\nline <em>two</em>"),
    ("<script>alert('x')</script>", "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"),
    ("*<b>hi</b>*", "<strong>&lt;b&gt;hi&lt;/b&gt;</strong>"),
    ('```<img src=x onerror="a()">```', "<code>&lt;img src=x onerror=&quot;a()&quot;&gt;</code>"),
    ("", ""),
    (None, ""),
])
def test_whatsapp_formatting(text, html):
    assert str(whatsapp_html(text)) == html
