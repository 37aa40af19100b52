"""The inbox in a real headless Chromium, over the whole path an operator's reply takes.

An operator logs into admin, opens the conversation waiting for a human and replies: the
page posts to the inbox -> ``send_to_contact`` -> the real gevent I/O worker -> the fake
Graph API, which posts signed statuses back to the live server's webhook; the page's poll
draws the ticks. A message the user sends meanwhile (a signed webhook posted by the test)
appears without a reload; a private note never reaches the fake; an attached file is uploaded
and arrives as an image; with the window closed the reply box offers the approved templates,
and a template send arrives with its variables.

Same Selenium setup as test_simulator_browser.py (Debian chromium + chromium-driver).
"""

from __future__ import annotations

import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from conversations.models import Contact, Direction, Message
from devtools import webhook_payloads as simulate
from devtools.fake_graph import start_fake_graph
from inbox.models import CannedResponse
from meta_integration.models import MetaAppConfig
from tests.support.browser import chromium, needs_chromium
from tests.support.inbox import BET_SETTLED, hand_over, inbound, make_template, make_user

PHONE_NUMBER_ID = "108877665544399"
OTHER_PHONE_NUMBER_ID = "108877665544311"
APP_SECRET = "inbox-browser-app-secret"
ACCESS_TOKEN = "inbox-browser-access-token"
WAIT = 45.0  # seconds: a send and its statuses on a loaded 2-core machine
WA_ID = "263771234500"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.workers,
    needs_chromium,
]


@pytest.fixture
def driver() -> Iterator:
    with chromium("1400,1000") as browser:
        yield browser


_diagnostics: dict = {}


@pytest.fixture
def inbox_path(transactional_db, live_server, io_worker, settings) -> Iterator[MetaAppConfig]:
    """The fake Graph API posting statuses to the live server's webhook, two business numbers,
    and a contact waiting for a human on the second."""
    fake, server = start_fake_graph(
        access_token=ACCESS_TOKEN,
        webhook_url=f"{live_server.url}/webhooks/meta/",
        app_secret=APP_SECRET,
        status_delay_ms=50,
    )
    _diagnostics.update(fake=fake, worker=io_worker)
    try:
        common = {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": "inbox-verify",
                  "graph_api_url": server.url, "send_rate_per_second": 50, "waba_id": "104455667788991"}
        MetaAppConfig.objects.create(name="Kwacha Casino", phone_number_id=OTHER_PHONE_NUMBER_ID,
                                     display_phone_number="263242700111", **common)
        config = MetaAppConfig.objects.create(name="Kwacha Sports", phone_number_id=PHONE_NUMBER_ID,
                                              display_phone_number="263242700100", **common)
        contact = Contact.objects.create(wa_id=WA_ID, profile_name="Rudo Chikore", app_config=config,
                                         last_inbound_at=timezone.now() - timedelta(minutes=2))
        inbound(contact, "I want to talk to a person please")
        hand_over(contact)
        yield config, fake
    finally:
        _diagnostics.clear()
        fake.reset()
        server.stop()


def wait_for(driver, what: str, condition: Callable, timeout: float = WAIT):
    """Wait for ``condition(driver)``; on timeout, fail with what the page and the path showed."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    try:
        return wait.until(condition)
    except TimeoutException:
        screenshot = Path(tempfile.mkdtemp(prefix="inbox-")) / "page.png"
        driver.save_screenshot(str(screenshot))
        body = driver.find_element("tag name", "body").text[-3000:]
        fake, worker = _diagnostics.get("fake"), _diagnostics.get("worker")
        sent = [(r.kind.value, r.http_status, r.to) for r in fake.requests()] if fake else []
        pytest.fail(
            f"no {what} within {timeout}s (screenshot: {screenshot}).\npage:\n{body}\n"
            f"fake Graph API received: {sent}\nI/O worker log (tail):\n{worker.log()[-3000:] if worker else ''}"
        )


def texts(driver, selector: str) -> list[str]:
    return [element.text for element in driver.find_elements("css selector", selector)]


def sent_texts(fake) -> list[tuple[str, str, str]]:
    """(business number id, recipient, body) of every message the fake accepted."""
    return [
        (r.path.split("/")[2], r.body.get("to"), (r.body.get("text") or {}).get("body") or r.body.get("type"))
        for r in fake.requests() if r.path.endswith("/messages") and isinstance(r.body, dict)
        and r.body.get("type")
    ]


def post_user_message(live_server, body_text: str) -> None:
    """The user writes: Meta's signed webhook to the live server."""
    body = simulate.webhook_body(
        [simulate.text(body_text, wa_id=WA_ID)], phone_number_id=PHONE_NUMBER_ID,
        display_phone_number="263242700100", profile_name="Rudo Chikore",
    )
    raw, headers = simulate.signed_request(body, APP_SECRET)
    request = urllib.request.Request(f"{live_server.url}/webhooks/meta/", data=raw, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_an_operator_answers_a_waiting_conversation_in_a_real_browser(driver, live_server, inbox_path):
    from selenium.webdriver.support.ui import Select

    config, fake = inbox_path
    make_user("rudo", role="agent")

    # log into admin; VIEW SITE / the index lead to the inbox, the waiting conversation first
    driver.get(f"{live_server.url}/admin/")
    driver.find_element("id", "id_username").send_keys("rudo")
    driver.find_element("id", "id_password").send_keys("pw-rudo")
    driver.find_element("css selector", "input[type=submit]").click()
    counts = wait_for(driver, "the admin index", lambda d: d.find_elements("id", "inbox-waiting-count"))
    assert counts[0].text == "1"
    driver.find_element("link text", "Conversations waiting for a human").click()
    wait_for(driver, "the inbox list", lambda d: d.find_elements("css selector", "#conversations .conversation-row"))
    first = driver.find_element("css selector", "#conversations .conversation-row")
    assert first.get_attribute("data-status") == "waiting" and "Rudo Chikore" in first.text
    first.find_element("css selector", "a.conversation-link").click()
    wait_for(driver, "the conversation", lambda d: "I want to talk to a person please" in d.find_element(
        "id", "timeline").text)
    driver.execute_script("window.__inboxLoaded = 'same page';")  # gone if the page reloads

    # take over, then reply with formatting: the fake receives exactly that text from this number
    driver.find_element("id", "take-over").click()
    wait_for(driver, "the takeover", lambda d: "Assigned to rudo" in d.find_element("id", "side").text)
    reply = "Hi Rudo, *Farai* from support here. How can I help?"
    driver.find_element("id", "reply-text").send_keys(reply)
    driver.find_element("id", "reply-send").click()
    wait_for(driver, "the reply at the fake", lambda d: sent_texts(fake))
    assert sent_texts(fake) == [(PHONE_NUMBER_ID, WA_ID, reply)]
    # drawn as WhatsApp would, with its sender and live ticks (the fake's statuses via the webhook)
    bubble = '.msg.out[data-sent-by="rudo"]'
    wait_for(driver, "read ticks on the reply",
             lambda d: d.find_elements("css selector", f'{bubble} .ticks[data-status="read"]'))
    assert driver.find_element("css selector", f"{bubble} .text strong").text == "Farai"

    # the user writes meanwhile: it appears in the open page without a reload
    post_user_message(live_server, "My withdrawal of $20 has not arrived")
    wait_for(driver, "the user's new message",
             lambda d: any("My withdrawal of $20 has not arrived" in t for t in texts(d, ".msg.in .text")))
    assert driver.execute_script("return window.__inboxLoaded") == "same page"

    # a private note: shown in the timeline, never sent
    driver.find_element("id", "note-text").send_keys("Checked the ledger: payout pending at the bank")
    driver.find_element("id", "note-save").click()
    wait_for(driver, "the note", lambda d: any("payout pending" in t for t in texts(d, "#timeline .note")))
    # the second reply comes from a canned response, found by typing "/" and part of its shortcut
    second = "Payouts reach your wallet within *2 hours* of approval."
    CannedResponse.objects.create(shortcut="payout-time", text=second)
    driver.find_element("id", "reply-text").send_keys("/payout")
    option = '#canned-menu .canned-option[data-shortcut="payout-time"]'
    wait_for(driver, "the canned response menu", lambda d: d.find_element("css selector", option).click() or True)
    assert driver.find_element("id", "reply-text").get_attribute("value") == second
    driver.find_element("id", "reply-send").click()
    wait_for(driver, "the second reply at the fake", lambda d: len(sent_texts(fake)) >= 2)
    assert sent_texts(fake) == [(PHONE_NUMBER_ID, WA_ID, reply), (PHONE_NUMBER_ID, WA_ID, second)]
    assert all("payout pending" not in str(r.body) for r in fake.requests())

    # a file from the operator's computer: uploaded to Meta, then sent as an image
    png = Path(tempfile.mkdtemp(prefix="inbox-")) / "bet-slip.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(200)))
    driver.find_element("id", "attach-file").send_keys(str(png))
    driver.find_element("id", "reply-text").send_keys("Your slip")
    driver.find_element("id", "reply-send").click()
    wait_for(driver, "the image at the fake", lambda d: len(sent_texts(fake)) >= 3)
    [image] = [r.body for r in fake.requests() if isinstance(r.body, dict) and r.body.get("type") == "image"]
    assert image["to"] == WA_ID and image["image"]["caption"] == "Your slip"
    assert fake.media.get(image["image"]["id"])["data"] == png.read_bytes()
    assert sent_texts(fake)[2][0] == PHONE_NUMBER_ID

    # the window closes: the reply box offers the approved templates with their variables
    make_template(config, components=BET_SETTLED)
    long_ago = timezone.now() - timedelta(hours=25)
    Message.objects.filter(contact__wa_id=WA_ID, direction=Direction.INBOUND).update(timestamp=long_ago)
    Contact.objects.filter(wa_id=WA_ID).update(last_inbound_at=long_ago)
    driver.refresh()
    wait_for(driver, "the closed-window box", lambda d: d.find_element("id", "window-closed").is_displayed())
    assert not driver.find_element("id", "reply-form").is_displayed()
    Select(driver.find_element("id", "template-select")).select_by_visible_text("bet_settled (en_US)")
    inputs = wait_for(driver, "the template's variables",
                      lambda d: d.find_elements("css selector", "#template-vars input"))
    assert [i.get_attribute("data-slot") for i in inputs] == ["body.1", "body.2"]
    inputs[0].send_keys("Rudo")
    driver.find_element("id", "template-send").click()  # one variable missing: refused, nothing sent
    wait_for(driver, "the refusal", lambda d: "body.2" in d.find_element("id", "inbox-error").text)
    assert len(sent_texts(fake)) == 3
    driver.find_elements("css selector", "#template-vars input")[1].send_keys("$20.00")
    driver.find_element("id", "template-send").click()
    wait_for(driver, "the template at the fake", lambda d: len(sent_texts(fake)) >= 4)
    [template] = [r.body for r in fake.requests() if isinstance(r.body, dict) and r.body.get("type") == "template"]
    assert template["to"] == WA_ID
    assert template["template"]["name"] == "bet_settled"
    assert template["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Rudo"}, {"type": "text", "text": "$20.00"}]}]
    assert sent_texts(fake)[3][0] == PHONE_NUMBER_ID
    wait_for(driver, "the template in the timeline",
             lambda d: d.find_elements("css selector", '.msg.out[data-kind="template"]'))


def test_older_messages_load_when_the_operator_scrolls_up(driver, live_server, transactional_db):
    from inbox.services import PAGE_SIZE
    from tests.support.inbox import make_contact, make_number

    number = make_number()
    contact = make_contact(number)
    for index in range(PAGE_SIZE + 7):
        inbound(contact, f"message number {index}")
    make_user("looker", role="readonly")  # reading needs no more than the read-only role
    driver.get(f"{live_server.url}/admin/login/?next=/admin/inbox/contact/{contact.pk}/")
    driver.find_element("id", "id_username").send_keys("looker")
    driver.find_element("id", "id_password").send_keys("pw-looker")
    driver.find_element("css selector", "input[type=submit]").click()
    wait_for(driver, "the newest page", lambda d: f"message number {PAGE_SIZE + 6}" in d.find_element(
        "id", "timeline").text)
    shown = texts(driver, "#timeline .msg .text")
    assert "message number 6" not in shown and shown[-1] == f"message number {PAGE_SIZE + 6}"
    assert not driver.find_elements("id", "reply-form")  # read-only: no reply box

    driver.execute_script("document.getElementById('chat').scrollTop = 0;")
    wait_for(driver, "the older page", lambda d: "message number 0" in texts(d, "#timeline .msg .text"))
    shown = texts(driver, "#timeline .msg .text")
    assert shown == [f"message number {i}" for i in range(PAGE_SIZE + 7)]  # in order, none twice
    assert driver.find_element("id", "older-marker").text == "Start of the conversation"
