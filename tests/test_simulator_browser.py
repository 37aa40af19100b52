"""The simulator in a real headless Chromium, over the whole path a WhatsApp message takes.

Browser -> simulator ``send`` view -> signed POST to the real webhook -> Message row ->
``flows.process_message`` on the real gevent I/O worker -> the default flows -> outbound
row -> ``send_message`` -> the fake Graph API -> its status webhooks back to the webhook;
the page polls the ``feed`` view and draws the bot's replies and ticks.

Driven with Selenium and Debian's ``chromium`` + ``chromium-driver`` (the driver path is
given explicitly, so Selenium Manager never looks for or downloads anything). The test skips
only when no Chromium binary is installed.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import include, path

from devtools.fake_graph import start_fake_graph
from meta_integration.models import MetaAppConfig
from tests.support.browser import chromium, needs_chromium

urlpatterns = [
    path("", include("meta_integration.urls")),
    path("simulator/", include("devtools.simulator.urls")),
    path("admin/", admin.site.urls),
]

PHONE_NUMBER_ID = "108877665544332"
APP_SECRET = "browser-test-app-secret"
ACCESS_TOKEN = "browser-test-access-token"
WAIT = 45.0  # seconds for one bot turn on a loaded 2-core machine (worker, webhook, fake)

pytestmark = [
    pytest.mark.urls(__name__),
    pytest.mark.browser,
    pytest.mark.workers,
    needs_chromium,
]


@pytest.fixture
def driver() -> Iterator:
    with chromium("1200,900") as browser:
        yield browser


@pytest.fixture
def whole_path(transactional_db, live_server, io_worker, settings) -> Iterator[MetaAppConfig]:
    """The fake Graph API wired to the live server's webhook, a business number that sends to
    it, and the default flows, for the real I/O worker to run."""
    from devtools.seed import seed_flows

    settings.DEBUG = True
    settings.META_PHONE_NUMBER_ID = PHONE_NUMBER_ID
    fake, server = start_fake_graph(
        access_token=ACCESS_TOKEN,
        webhook_url=f"{live_server.url}/webhooks/meta/",
        app_secret=APP_SECRET,
        status_delay_ms=50,
    )
    _diagnostics.update(fake=fake, worker=io_worker)
    try:
        config = MetaAppConfig.objects.create(
            name="Kwacha Sports",
            phone_number_id=PHONE_NUMBER_ID,
            display_phone_number="263242700100",
            waba_id="104455667788990",
            access_token=ACCESS_TOKEN,
            app_secret=APP_SECRET,
            verify_token="browser-test-verify",
            graph_api_url=server.url,
            send_rate_per_second=50,
        )
        seed_flows()
        yield config
    finally:
        fake.reset()
        server.stop()


@pytest.fixture
def fake_of_path(whole_path):
    """The fake Graph API the whole path sends to (to make it forget what it received)."""
    return _diagnostics["fake"]


def wait_for(driver, what: str, condition: Callable, timeout: float = WAIT):
    """Wait for ``condition(driver)``; on timeout, fail with what the chat and the path showed."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # a bubble is redrawn when its ticks change: a reference held across polls may go stale
    wait = WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    try:
        return wait.until(condition)
    except TimeoutException:
        chat = driver.find_element("id", "messages").text
        status = driver.find_element("id", "status-line").text
        screenshot = Path(tempfile.mkdtemp(prefix="simulator-")) / "page.png"
        driver.save_screenshot(str(screenshot))
        sent = [(r.kind.value, r.http_status, r.to) for r in _diagnostics["fake"].requests()]
        worker_log = _diagnostics["worker"].log()[-3000:]
        pytest.fail(
            f"no {what} within {timeout}s (screenshot: {screenshot}).\nstatus line: {status!r}\nchat:\n{chat}\n"
            f"fake Graph API received: {sent}\nI/O worker log (tail):\n{worker_log}"
        )


_diagnostics: dict = {}


def bot_messages(driver, kind: str | None = None) -> list:
    selector = '.msg[data-who="bot"]' + (f'[data-kind="{kind}"]' if kind else "")
    return driver.find_elements("css selector", selector)


def texts(driver, selector: str) -> list[str]:
    """The text of matching elements, read in one go (no references kept)."""
    return [element.text for element in driver.find_elements("css selector", selector)]


def bot_texts(driver, kind: str) -> list[str]:
    return texts(driver, f'.msg[data-who="bot"][data-kind="{kind}"]')


def tap(driver, selector: str) -> None:
    """Click what ``selector`` finds now, retrying if a poll redrew it between find and click."""
    wait_for(driver, f"something to tap at {selector}",
             lambda d: d.find_element("css selector", selector).click() or True)


def test_chat_with_the_bot_in_a_real_browser(driver, live_server, whole_path):
    from selenium.webdriver.common.keys import Keys

    number = "26377" + str(uuid.uuid4().int)[:7]
    driver.get(f"{live_server.url}/simulator/")
    assert "WhatsApp simulator" in driver.title

    # a new user: number and profile name
    driver.find_element("id", "user-number").clear()
    driver.find_element("id", "user-number").send_keys(number)
    driver.find_element("id", "user-name").clear()
    driver.find_element("id", "user-name").send_keys("Rudo Chikore")
    driver.find_element("id", "user-use").click()
    wait_for(driver, "user switch", lambda d: number in d.find_element("id", "chat-subtitle").text)

    # "hi" -> the main menu, a list
    box = driver.find_element("id", "composer-text")
    box.send_keys("hi", Keys.ENTER)
    mine = wait_for(driver, "own message", lambda d: texts(d, '.msg[data-who="me"]'))
    assert mine[0].startswith("hi")
    menu = wait_for(driver, "main menu", lambda d: bot_texts(d, "list"))[0]
    assert "Welcome! What can I help you with today?" in menu
    assert "Main menu" in menu  # the list's header
    # the server's session waits at the menu: its idle countdown shows
    wait_for(driver, "idle countdown", lambda d: timer(d).startswith("session expires in "))

    # the user's message was accepted by the webhook (one tick at least)
    accepted = '.msg[data-who="me"] .ticks[data-status="sent"], .msg[data-who="me"] .ticks[data-status="read"]'
    wait_for(driver, "tick on the user's message", lambda d: d.find_elements("css selector", accepted))

    # open the list and pick "Help" -> the help text with two reply buttons
    tap(driver, '.msg[data-kind="list"] .list-open')
    wait_for(driver, "list sheet", lambda d: d.find_element("id", "list-sheet").is_displayed())
    rows = driver.find_elements("css selector", "#list-sheet .list-row")
    assert [row.get_attribute("data-id") for row in rows] == ["fixtures", "wallet", "profile", "help", "human"]
    tap(driver, '#list-sheet .list-row[data-id="help"]')
    help_message = wait_for(driver, "help message", lambda d: bot_texts(d, "buttons"))[0]
    assert "Here's how this chat works" in help_message
    assert not driver.find_element("id", "list-sheet").is_displayed()
    # the user's tap is drawn as their reply
    taps = wait_for(driver, "drawn tap", lambda d: texts(d, '.msg[data-who="me"][data-kind="list_reply"]'))
    assert "Help" in taps[0]
    # the help flow ended: no session, so no countdown (it does not run on from the user's message)
    wait_for(driver, "no countdown after the flow ended", lambda d: timer(d) == "")

    # tap the "Main menu" reply button -> the menu again
    tap(driver, '.msg[data-kind="buttons"] .reply-button[data-id="menu"]')
    wait_for(driver, "second main menu", lambda d: len(bot_messages(d, "list")) >= 2)

    # the fake Graph API posted sent/delivered/read back; every bot message shows read ticks
    def all_read(d):
        messages = bot_messages(d)
        ticks = [m.find_element("css selector", ".ticks").get_attribute("data-status") for m in messages]
        return len(messages) >= 3 and all(t == "read" for t in ticks)

    wait_for(driver, "read ticks on every bot message", all_read)
    assert not driver.find_elements("css selector", ".msg .error")
    assert driver.find_element("id", "status-line").text == ""

    # asking for a human: the operator has the conversation, no idle countdown runs
    wait_for(driver, "countdown at the second menu", lambda d: timer(d).startswith("session expires in "))
    wait_for(driver, "the second menu's list", lambda d: bot_messages(d, "list")[-1].find_element(
        "css selector", ".list-open").click() or True)  # fmt: skip
    wait_for(driver, "list sheet", lambda d: d.find_element("id", "list-sheet").is_displayed())
    tap(driver, '#list-sheet .list-row[data-id="human"]')
    wait_for(driver, "handover shown instead of a countdown", lambda d: timer(d) == "with a human: no idle countdown")


def use_new_user(driver, number: str, name: str) -> None:
    driver.find_element("id", "user-number").clear()
    driver.find_element("id", "user-number").send_keys(number)
    driver.find_element("id", "user-name").clear()
    driver.find_element("id", "user-name").send_keys(name)
    driver.find_element("id", "user-use").click()
    wait_for(driver, "user switch", lambda d: number in d.find_element("id", "chat-subtitle").text)


def say(driver, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.find_element("id", "composer-text").send_keys(text, Keys.ENTER)


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_simulator_survives_an_admin_login_a_lost_cache_and_resets(driver, live_server, whole_path, fake_of_path):
    from django.contrib.auth.models import User

    User.objects.create_superuser("rudo", "rudo@example.com", "a-long-operator-password")
    number = "26377" + str(uuid.uuid4().int)[:7]
    driver.get(f"{live_server.url}/simulator/")
    simulator_tab = driver.current_window_handle
    use_new_user(driver, number, "Tatenda Moyo")

    # the state panel and the bot's log follow the conversation
    say(driver, "hi")
    wait_for(driver, "main menu", lambda d: bot_texts(d, "list"))
    wait_for(driver, "state panel at the menu",
             lambda d: text_of(d, "state-flow") == "main_menu" and text_of(d, "state-step") == "menu")
    assert "waiting for a reply" in text_of(driver, "state-waiting")
    assert text_of(driver, "state-handover") == "bot"
    log = wait_for(driver, "a turn in the bot log", lambda d: texts(d, "#bot-log .turn:not(.empty)"))
    assert "step main_menu.menu (question)" in log[0]
    assert "flow_started:main_menu" in log[0]

    # the same browser logs into the admin in another tab: the CSRF cookie is rotated
    before = driver.get_cookie("csrftoken")["value"]
    driver.switch_to.new_window("tab")
    driver.get(f"{live_server.url}/admin/login/")
    driver.find_element("id", "id_username").send_keys("rudo")
    driver.find_element("id", "id_password").send_keys("a-long-operator-password")
    driver.find_element("css selector", "input[type=submit]").click()
    wait_for(driver, "admin index", lambda d: "Operations" in d.title)
    assert driver.get_cookie("csrftoken")["value"] != before
    driver.switch_to.window(simulator_tab)  # not reloaded: it still holds the old token

    # ... and the simulator still sends
    tap(driver, '.msg[data-kind="list"] .list-open')
    tap(driver, '#list-sheet .list-row[data-id="help"]')
    wait_for(driver, "help message after the admin login", lambda d: bot_texts(d, "buttons"))
    assert not driver.find_elements("css selector", ".msg .error")
    assert "Not sent" not in text_of(driver, "status-line")
    wait_for(driver, "the help turn in the log", lambda d: len(texts(d, "#bot-log .turn:not(.empty)")) >= 2)
    newest = texts(driver, "#bot-log .turn")[0]  # newest first
    assert "answer main_menu.menu: valid" in newest

    # the page's cache is lost and the fake Graph API forgot what it sent: the database
    # still has both sides, and a reload draws them
    driver.execute_script(
        "const s = JSON.parse(localStorage.getItem('whatsapp-simulator-v1')); s.chats = {};"
        "localStorage.setItem('whatsapp-simulator-v1', JSON.stringify(s));")
    fake_of_path.reset()
    driver.refresh()
    wait_for(driver, "the whole conversation after a reload",
             lambda d: bot_texts(d, "list") and bot_texts(d, "buttons")
             and len(texts(d, '.msg[data-who="me"]')) >= 2)
    mine = texts(driver, '.msg[data-who="me"]')
    assert mine[0].startswith("hi") and "Help" in mine[1]
    assert "Welcome! What can I help you with today?" in bot_texts(driver, "list")[0]
    assert "Here's how this chat works" in bot_texts(driver, "buttons")[0]

    # reset: the chat, the session and the log start over
    tap(driver, "#reset-chat")
    wait_for(driver, "an empty chat", lambda d: not d.find_elements("css selector", "#messages .msg"))
    wait_for(driver, "no session", lambda d: text_of(d, "state-flow") == "—")
    assert texts(driver, "#bot-log .turn:not(.empty)") == []
    driver.refresh()
    wait_for(driver, "still empty after a reload", lambda d: "no session" in text_of(d, "state-waiting"))
    assert not driver.find_elements("css selector", "#messages .msg")
    say(driver, "hi")
    wait_for(driver, "the menu again", lambda d: bot_texts(d, "list"))
    wait_for(driver, "state panel at the menu again", lambda d: text_of(d, "state-flow") == "main_menu")
    assert len(texts(driver, '.msg[data-who="me"]')) == 1
    assert not driver.find_elements("css selector", ".msg .error")


def timer(driver) -> str:
    return driver.find_element("id", "session-timer").text
