"""The inbox in Django admin: the list, the conversation page, the poll, actions and roles.

Everything through the views as an operator's browser calls them (admin login, CSRF-exempt
test client); sends that must reach Meta are in test_inbox_send.py (real workers).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conversations.models import Label, Message, MessageStatus
from inbox import services
from inbox.models import AuditEvent, CannedResponse, Conversation, Note
from tests.support.inbox import (
    hand_over,
    inbound,
    make_contact,
    make_number,
    make_template,
    make_user,
    outbound,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(client):
    user = make_user("rudo", role="agent")
    client.force_login(user)
    return user


def conv(contact, number=None) -> Conversation:
    services.sync_conversations()
    return Conversation.objects.get(contact=contact, app_config=number or contact.app_config)


def list_rows(client, **query) -> list[tuple[str, str]]:
    """(wa_id, status) of the list's rows, in order, as the page shows them."""
    response = client.get(reverse("inbox:list"), query)
    assert response.status_code == 200
    return [(c.contact.wa_id, c.status) for c in response.context["rows"]]


# --------------------------------------------------------------------------- list


def test_waiting_conversations_come_first_oldest_wait_first_then_the_most_recent(client, agent):
    number = make_number()
    quiet = make_contact(number, wa_id="263770000001")
    recent = make_contact(number, wa_id="263770000002")
    waited_long = make_contact(number, wa_id="263770000003")
    waited_short = make_contact(number, wa_id="263770000004")
    inbound(quiet, "old news")
    inbound(waited_long, "help please")
    inbound(waited_short, "agent")
    inbound(recent, "newest of all")
    hand_over(waited_long, ago=timedelta(minutes=30))
    hand_over(waited_short, ago=timedelta(minutes=2))

    assert list_rows(client) == [
        ("263770000003", "waiting"), ("263770000004", "waiting"),
        ("263770000002", "bot"), ("263770000001", "bot"),
    ]


def test_filters_mine_unassigned_waiting_number_label_and_search(client, agent):
    main, other = make_number("Main"), make_number("Other")
    mine = make_contact(main, wa_id="263771110001", name="Chipo Banda")
    waiting = make_contact(main, wa_id="263771110002", name="Farai")
    on_other = make_contact(other, wa_id="263771110003", name="Nyasha")
    inbound(mine, "I want to withdraw")
    inbound(waiting, "human please")
    inbound(on_other, "what are the odds for Dynamos?")
    hand_over(waiting)
    services.take_over(conv(mine), agent)
    vip = Label.objects.create(name="vip", color="#16a34a")
    on_other.labels.add(vip)

    assert [w for w, _ in list_rows(client, view="mine")] == ["263771110001"]
    assert [w for w, _ in list_rows(client, view="waiting")] == ["263771110002"]
    assert sorted(w for w, _ in list_rows(client, view="unassigned")) == ["263771110002", "263771110003"]
    assert [w for w, _ in list_rows(client, number=other.pk)] == ["263771110003"]
    assert [w for w, _ in list_rows(client, label=vip.pk)] == ["263771110003"]
    assert [w for w, _ in list_rows(client, q="chipo")] == ["263771110001"]  # name
    assert [w for w, _ in list_rows(client, q="+263 77 111 0002")] == ["263771110002"]  # number as typed
    assert [w for w, _ in list_rows(client, q="dynamos")] == ["263771110003"]  # message text
    assert list_rows(client, q="nobody-says-this") == []
    assert list_rows(client, view="no-such-view") == list_rows(client)  # unknown view: all


def test_unread_counts_are_per_operator_and_opening_the_conversation_reads_it(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "one")
    outbound(contact, "bot answer")
    inbound(contact, "two")
    inbound(contact, "three")
    conversation = conv(contact)

    rows = client.get(reverse("inbox:list")).context["rows"]
    assert [r.unread for r in rows] == [3]
    assert client.get(reverse("inbox:conversation", args=[conversation.pk])).status_code == 200
    assert [r.unread for r in client.get(reverse("inbox:list")).context["rows"]] == [0]
    inbound(contact, "four")
    assert [r.unread for r in client.get(reverse("inbox:list")).context["rows"]] == [1]

    colleague = make_user("tafadzwa", role="agent")
    client.force_login(colleague)  # has read nothing
    assert [r.unread for r in client.get(reverse("inbox:list")).context["rows"]] == [4]


def test_the_list_costs_the_same_number_of_queries_for_3_or_12_conversations(client, agent,
                                                                             django_assert_num_queries):
    number = make_number()
    label = Label.objects.create(name="bettor")

    def add(count: int) -> None:
        for _ in range(count):
            contact = make_contact(number)
            contact.labels.add(label)
            inbound(contact, "hi")
            outbound(contact, "menu")

    queries_seen: list = []

    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("inbox:list"))
        assert response.status_code == 200
        queries_seen[:] = queries.captured_queries
        return len(queries)

    add(3)
    list_queries()  # the first sync creates the rows
    few = list_queries()
    add(9)
    list_queries()
    assert list_queries() == few
    # session, user, sync (mark, max id), count, page, the page's last messages and labels,
    # admin's sidebar (the user's permissions: 2), the role (groups), the filters' numbers and labels
    with django_assert_num_queries(few):
        client.get(reverse("inbox:list"))
    assert few == 13, "\n".join(q["sql"][:120] for q in queries_seen)


def test_the_admin_index_shows_waiting_conversations_and_failed_messages(client, agent):
    admin_user = make_user("boss", role="admin")
    client.force_login(admin_user)
    number = make_number()
    for _ in range(2):
        contact = make_contact(number)
        inbound(contact, "human")
        hand_over(contact)
    quiet = make_contact(number)
    inbound(quiet, "hi")
    outbound(quiet, "refused", status=MessageStatus.FAILED, error_code=131026, error_title="Undeliverable")

    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="inbox-waiting-count">2<' in page
    assert 'id="inbox-failed-count">1<' in page
    assert reverse("inbox:list") in page


def test_a_non_staff_user_cannot_reach_the_inbox(client):
    user = make_user("outsider", role="agent", staff=False)
    client.force_login(user)
    response = client.get(reverse("inbox:list"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.logout()
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "x")
    conversation = conv(contact)
    assert client.get(reverse("inbox:poll", args=[conversation.pk])).status_code == 302


# --------------------------------------------------------------------------- conversation page


def test_messages_render_whatsapp_formatting_and_escape_html(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "<script>alert('x')</script> *bold* _it_ ~gone~ ```<b>mono *not bold*</b>``` snake_case_name")
    outbound(contact, "Pick one", spec={"type": "buttons", "body": "Pick *one*", "buttons": [
        {"id": "a", "title": "Fixtures"}, {"id": "b", "title": "<img src=x onerror=alert(1)>"}]})
    outbound(contact, "", sent_by="campaign:7", spec={
        "type": "template", "name": "bet_settled", "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Tendai"}]}]})
    outbound(contact, "From a human", sent_by="rudo", status=MessageStatus.READ)
    page = client.get(reverse("inbox:conversation", args=[conv(contact).pk])).content.decode()

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<strong>bold</strong> <em>it</em> <del>gone</del>" in page
    assert "<code>&lt;b&gt;mono *not bold*&lt;/b&gt;</code>" in page  # nothing formatted inside mono
    assert "snake_case_name" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # a button title
    assert '<div class="card-button">Fixtures</div>' in page
    assert "Template bet_settled" in page and "Campaign 7" in page
    assert 'data-sent-by="rudo"' in page and 'ticks-read' in page


def test_quotes_media_and_deleted_or_edited_messages_show_as_whatsapp_does(client, agent):
    number = make_number()
    contact = make_contact(number)
    asked = outbound(contact, "Your stake?")
    reply = inbound(contact, "10 dollars", reply_to_wamid=asked.wamid)
    inbound(contact, "", message_type="image",
            content={"media": {"id": "987654", "mime_type": "image/jpeg", "caption": "my *slip*"}})
    deleted = inbound(contact, "oops wrong chat")
    Message.objects.filter(pk=deleted.pk).update(content={"text": "oops wrong chat", "deleted": True})
    edited = inbound(contact, "I bet 5")
    Message.objects.filter(pk=edited.pk).update(content={"edited_text": "I bet 50", "edited_at": "2026-01-01"})
    inbound(contact, "", message_type="revoke", content={"revoke": {"original_message_id": deleted.wamid}})

    page = client.get(reverse("inbox:conversation", args=[conv(contact).pk])).content.decode()
    quoted = page[page.index(f'data-msg-id="{reply.pk}"'):]
    assert 'class="quote"' in quoted[:600] and "Your stake?" in quoted[:600]
    assert "media id 987654" in page and "my <strong>slip</strong>" in page
    assert "This message was deleted" in page
    assert "I bet 50" in page and ">edited<" in page
    assert "The contact deleted a message" not in page  # shown on the original instead


def test_older_pages_load_before_the_oldest_shown_message(client, agent):
    number = make_number()
    contact = make_contact(number)
    messages = [inbound(contact, f"message {i}") for i in range(services.PAGE_SIZE + 5)]
    conversation = conv(contact)
    response = client.get(reverse("inbox:conversation", args=[conversation.pk]))
    assert response.context["has_older"] is True
    assert response.context["oldest_id"] == messages[5].pk
    older = client.get(reverse("inbox:older", args=[conversation.pk]), {"before": messages[5].pk}).json()
    assert older["has_older"] is False and older["oldest_id"] == messages[0].pk
    assert "message 4" in older["html"] and "message 5" not in older["html"]


# --------------------------------------------------------------------------- poll


def poll(client, conversation, **params):
    query = {"after": 0, "v": conversation.version, "n": 0, "e": 0, "st": "", **params}
    response = client.get(reverse("inbox:poll", args=[conversation.pk]), query)
    assert response.status_code == 200
    return response.json()


def test_poll_when_nothing_changed_is_one_query(client, agent, django_assert_num_queries):
    number = make_number()
    contact = make_contact(number)
    first = inbound(contact, "hi")
    answer = outbound(contact, "menu", status=MessageStatus.DELIVERED)
    conversation = conv(contact)
    # the request's session and user (every admin request) + one query for the poll itself
    with django_assert_num_queries(3):
        data = poll(client, conversation, after=answer.pk, st=f"{answer.pk}:delivered")
    assert data == {"changed": False, "version": conversation.version}
    assert first.pk < answer.pk


def test_poll_returns_new_messages_and_status_changes(client, agent):
    number = make_number()
    contact = make_contact(number)
    question = inbound(contact, "can I bet on Dynamos?")
    answer = outbound(contact, "menu", status=MessageStatus.SENT, reply_to_wamid=question.wamid)
    conversation = conv(contact)

    new = inbound(contact, "I need *help*")
    Message.objects.filter(pk=answer.pk).update(status=MessageStatus.READ)
    data = poll(client, conversation, after=answer.pk, st=f"{answer.pk}:sent")
    assert data["changed"] is True and data["last_id"] == new.pk
    assert f'data-msg-id="{new.pk}"' in data["html"] and "I need <strong>help</strong>" in data["html"]
    assert [(s["id"], s["status"]) for s in data["statuses"]] == [(answer.pk, "read")]
    assert 'ticks-read' in data["statuses"][0]["html"]
    assert "can I bet on Dynamos?" in data["statuses"][0]["html"]  # redrawn with its quote
    # the page now knows: nothing again
    assert poll(client, conversation, after=new.pk, st="")["changed"] is False


def test_poll_returns_notes_and_actions_when_the_version_moved(client, agent):
    number = make_number()
    contact = make_contact(number)
    last = inbound(contact, "hi")
    conversation = conv(contact)
    version = conversation.version
    services.add_note(conversation, agent, "VIP, be nice")
    services.take_over(conversation, agent)
    data = poll(client, conversation, after=last.pk, v=version)
    assert data["changed"] is True and data["version"] > version
    assert "VIP, be nice" in data["html"] and "took over" in data["html"]
    assert "Assigned to rudo" in data["side_html"]


def test_poll_of_a_missing_conversation_is_404(client, agent):
    assert client.get(reverse("inbox:poll", args=[999999])).status_code == 404


# --------------------------------------------------------------------------- actions


def act(client, conversation, action, **data):
    return client.post(reverse("inbox:action", args=[conversation.pk]), {"action": action, **data})


def test_take_over_release_resolve_and_assign_change_state_and_are_audited(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    conversation = conv(contact)
    colleague = make_user("chipo", role="agent")

    assert act(client, conversation, "take_over").json() == {"ok": True}
    contact.refresh_from_db()
    assert contact.needs_human is True  # the bot is quiet
    assert list_rows(client) == [(contact.wa_id, "assigned")]

    assert act(client, conversation, "assign", agent=colleague.pk).status_code == 200
    conversation.refresh_from_db()
    assert conversation.assignee == colleague

    assert act(client, conversation, "assign", agent="").status_code == 200  # unassign: waits again
    assert list_rows(client) == [(contact.wa_id, "waiting")]

    assert act(client, conversation, "release").status_code == 200
    contact.refresh_from_db()
    assert contact.needs_human is False and contact.handover_at is None
    assert list_rows(client) == [(contact.wa_id, "bot")]
    # releasing again: refused, nothing changed
    response = act(client, conversation, "release")
    assert response.status_code == 409 and "already answering" in response.json()["error"]

    assert act(client, conversation, "take_over").status_code == 200
    assert act(client, conversation, "resolve").status_code == 200
    contact.refresh_from_db()
    assert contact.needs_human is False
    assert list_rows(client) == [(contact.wa_id, "resolved")]
    inbound(contact, "one more thing")  # the contact writes again: the bot has it
    Message.objects.filter(contact=contact).update(created_at=timezone.now())
    contact.last_inbound_at = timezone.now()
    contact.save(update_fields=["last_inbound_at"])
    assert list_rows(client) == [(contact.wa_id, "bot")]

    audit = list(AuditEvent.objects.filter(conversation=conversation).values_list("actor_name", "action", "detail"))
    assert audit == [
        ("rudo", "take_over", ""), ("rudo", "assign", "to chipo"), ("rudo", "unassign", ""),
        ("rudo", "release", ""), ("rudo", "take_over", ""), ("rudo", "resolve", ""),
    ]
    assert all(e.created_at for e in AuditEvent.objects.all())


def test_a_handover_started_by_the_bot_waits_even_after_an_earlier_assignment(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    conversation = conv(contact)
    services.take_over(conversation, agent)
    # released through the REST API (no inbox action), then a flow hands over again
    from flows.services.sessions import release_contact

    release_contact(contact.pk)
    hand_over(contact, ago=timedelta(seconds=-5))  # after the assignment
    assert list_rows(client) == [(contact.wa_id, "waiting")]


def test_assigning_to_a_read_only_user_or_nobody_real_is_refused(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    conversation = conv(contact)
    viewer = make_user("looker", role="readonly")
    for agent_id in (viewer.pk, 999999):
        response = act(client, conversation, "assign", agent=agent_id)
        assert response.status_code == 400 and response.json()["field"] == "agent"
    assert not AuditEvent.objects.exists()
    contact.refresh_from_db()
    assert contact.needs_human is False


def test_notes_are_stored_shown_and_never_sent(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    conversation = conv(contact)
    assert act(client, conversation, "note", text="Asked about <b>withdrawals</b> twice").json() == {"ok": True}
    assert Note.objects.get().text == "Asked about <b>withdrawals</b> twice"
    assert not Message.objects.outbound().exists()
    page = client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "Asked about &lt;b&gt;withdrawals&lt;/b&gt; twice" in page
    for bad in ("", "   ", "x" * 4001):
        response = act(client, conversation, "note", text=bad)
        assert response.status_code == 400 and response.json()["field"] == "text"
    assert Note.objects.count() == 1


def test_labels_are_added_and_removed_on_the_contact(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    conversation = conv(contact)
    vip = Label.objects.create(name="vip")
    assert act(client, conversation, "label_add", label=vip.pk).status_code == 200
    assert list(contact.labels.all()) == [vip]
    assert act(client, conversation, "label_remove", label=vip.pk).status_code == 200
    assert list(contact.labels.all()) == []
    assert act(client, conversation, "label_remove", label=vip.pk).status_code == 400
    assert act(client, conversation, "label_add", label=999999).status_code == 400
    assert list(AuditEvent.objects.values_list("action", "detail")) == [("label_add", "vip"), ("label_remove", "vip")]


def test_an_unknown_action_is_refused(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    response = act(client, conv(contact), "delete_everything")
    assert response.status_code == 400 and not AuditEvent.objects.exists()


# --------------------------------------------------------------------------- roles


def test_a_read_only_operator_sees_but_cannot_act(client):
    viewer = make_user("looker", role="readonly")
    client.force_login(viewer)
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    hand_over(contact)
    conversation = conv(contact)
    make_template(number)

    assert client.get(reverse("inbox:list")).status_code == 200
    page = client.get(reverse("inbox:conversation", args=[conversation.pk])).content.decode()
    assert "read-only" in page and 'id="reply-form"' not in page and 'data-action="take_over"' not in page

    posts = [
        (reverse("inbox:send", args=[conversation.pk]), {"text": "hi"}),
        (reverse("inbox:template", args=[conversation.pk]), {"template": 1}),
        *[(reverse("inbox:action", args=[conversation.pk]), {"action": a, "text": "n", "label": 1})
          for a in ("take_over", "release", "resolve", "assign", "note", "label_add")],
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "read-only" in response.json()["error"]
    assert not Message.objects.outbound().exists()
    assert not AuditEvent.objects.exists() and not Note.objects.exists()
    contact.refresh_from_db()
    assert contact.needs_human is True


def test_staff_in_no_role_group_and_superusers_may_act(client):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    conversation = conv(contact)
    for user in (make_user("plainstaff", role="none"), make_user("root", role="admin")):
        client.force_login(user)
        assert act(client, conversation, "note", text=f"by {user.username}").status_code == 200
    assert Note.objects.count() == 2


# --------------------------------------------------------------------------- reply box


def test_a_closed_window_offers_the_approved_templates_with_their_variables(client, agent):
    number = make_number()
    contact = make_contact(number, wrote_ago=timedelta(hours=25))
    inbound(contact, "old")
    approved = make_template(number)
    make_template(number, "promo_rejected", status="REJECTED")
    make_template(make_number("Elsewhere"), "other_number")
    conversation = conv(contact)

    response = client.get(reverse("inbox:conversation", args=[conversation.pk]))
    composer = response.context["composer"]
    assert composer["window_left"] == 0
    assert [(t["id"], t["name"]) for t in composer["templates"]] == [(approved.pk, "bet_settled")]
    assert [s["key"] for s in composer["templates"][0]["slots"]] == ["body.1", "body.2"]
    assert "24-hour window is closed" in response.content.decode()

    # free text is refused, nothing written
    response = client.post(reverse("inbox:send", args=[conversation.pk]), {"text": "hello?"})
    assert response.status_code == 400 and "window is closed" in response.json()["error"]
    assert not Message.objects.outbound().exists()


@pytest.mark.parametrize("values, field", [
    ({"var:body.1": "Tendai"}, "template.body.2"),  # too few
    ({"var:body.1": "Tendai", "var:body.2": "$5", "var:body.3": "x"}, "template.body.3"),  # too many
    ({"var:body.1": "Tendai", "var:body.2": "   "}, "template.body.2"),  # empty
    ({"var:body.1": "T" * 1025, "var:body.2": "$5"}, "template.body.1"),  # too long
])
def test_a_template_send_with_wrong_variables_is_refused_and_nothing_is_written(client, agent, values, field):
    number = make_number()
    contact = make_contact(number, wrote_ago=timedelta(days=3))
    inbound(contact, "old")
    template = make_template(number)
    response = client.post(reverse("inbox:template", args=[conv(contact).pk]), {"template": template.pk, **values})
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"].startswith(field)
    assert not Message.objects.outbound().exists() and not AuditEvent.objects.exists()


def test_a_template_that_is_not_approved_or_of_another_number_is_refused(client, agent):
    number = make_number()
    contact = make_contact(number, wrote_ago=timedelta(days=3))
    inbound(contact, "old")
    conversation = conv(contact)
    for template in (make_template(number, "paused_one", status="PAUSED"), make_template(make_number(), "theirs")):
        response = client.post(reverse("inbox:template", args=[conversation.pk]),
                               {"template": template.pk, "var:body.1": "a", "var:body.2": "b"})
        assert response.status_code == 400
    assert not Message.objects.outbound().exists()


def test_reply_validation_empty_too_long_blocked_and_foreign_quote(client, agent):
    number = make_number()
    contact = make_contact(number)
    inbound(contact, "hello")
    other = make_contact(number)
    theirs = inbound(other, "not yours")
    conversation = conv(contact)
    url = reverse("inbox:send", args=[conversation.pk])
    for data, field in (({"text": "  "}, "text"), ({"text": "x" * 4097}, "text"),
                        ({"text": "hi", "reply_to": theirs.wamid}, "reply_to")):
        response = client.post(url, data)
        assert response.status_code == 400 and response.json()["field"] == field
    contact.blocked = True
    contact.save(update_fields=["blocked"])
    response = client.post(url, {"text": "hi"})
    assert response.status_code == 400 and "blocked" in response.json()["error"]
    assert not Message.objects.outbound().exists()


def test_canned_responses_are_searched_by_shortcut_and_text(client, agent):
    CannedResponse.objects.create(shortcut="hours", text="We answer *8am-8pm*, Monday to Saturday.")
    CannedResponse.objects.create(shortcut="withdraw", text="Withdrawals take up to 24 hours.")
    found = client.get(reverse("inbox:canned"), {"q": "hour"}).json()["results"]
    assert [r["shortcut"] for r in found] == ["hours", "withdraw"]
    assert [r["shortcut"] for r in client.get(reverse("inbox:canned"), {"q": "with"}).json()["results"]] == [
        "withdraw"]
    assert len(client.get(reverse("inbox:canned")).json()["results"]) == 2


def test_a_contact_link_opens_its_conversation(client, agent):
    number = make_number()
    contact = make_contact(number)
    response = client.get(reverse("inbox:contact", args=[contact.pk]))
    conversation = Conversation.objects.get(contact=contact)
    assert response.status_code == 302 and response["Location"] == reverse("inbox:conversation",
                                                                             args=[conversation.pk])


def test_the_window_is_per_business_number_as_the_send_path_judges_it(client, agent):
    """The contact wrote to the casino number a minute ago, to the sports number two days ago:
    the sports conversation's window is closed (the send path would refuse a free-form reply)."""
    sports, casino = make_number("Sports"), make_number("Casino")
    contact = make_contact(sports, wrote_ago=timedelta(days=2))
    inbound(contact, "old question", number=sports)
    contact.last_inbound_at = timezone.now() - timedelta(minutes=1)
    contact.app_config = casino
    contact.save(update_fields=["last_inbound_at", "app_config"])
    inbound(contact, "new question", number=casino)

    rows = {c.app_config_id: c.window_left for c in client.get(reverse("inbox:list")).context["rows"]}
    assert rows[sports.pk] == 0 and rows[casino.pk] > 23 * 3600
    on_sports = conv(contact, sports)
    response = client.post(reverse("inbox:send", args=[on_sports.pk]), {"text": "hello"})
    assert response.status_code == 400 and "window is closed" in response.json()["error"]
    assert client.get(reverse("inbox:conversation", args=[on_sports.pk])).context["composer"]["window_left"] == 0
    assert not Message.objects.outbound().exists()


def test_poll_never_returns_another_conversations_messages(client, agent):
    number = make_number()
    mine, theirs = make_contact(number), make_contact(number)
    last = inbound(mine, "hi")
    secret = outbound(theirs, "their private reply", status=MessageStatus.READ)
    conversation = conv(mine)
    data = poll(client, conversation, after=last.pk, st=f"{secret.pk}:sent")
    assert data.get("statuses", []) == [] and "their private reply" not in str(data)


def test_media_shows_inline_once_stored_else_why_not(client, agent, django_assert_max_num_queries):
    from conversations.models import MediaStatus, MessageMedia

    number = make_number()
    contact = make_contact(number)
    kinds = {"image": "image/jpeg", "audio": "audio/ogg", "video": "video/mp4", "document": "application/pdf"}
    stored = {}
    for kind, mime in kinds.items():
        message = inbound(contact, "", message_type=kind,
                          content={"media": {"id": f"id-{kind}", "mime_type": mime, "filename": "slip.pdf"}})
        MessageMedia.objects.create(message=message, media_id=f"id-{kind}", mime_type=mime, status=MediaStatus.STORED,
                                    file=f"media/{kind}.bin", filename="slip.pdf")
        stored[kind] = reverse("conversations:media", args=[message.pk])
    waiting = inbound(contact, "", message_type="image", content={"media": {"id": "id-later"}})
    MessageMedia.objects.create(message=waiting, media_id="id-later")
    refused = inbound(contact, "", message_type="image", content={"media": {"id": "id-big"}})
    MessageMedia.objects.create(message=refused, media_id="id-big", status=MediaStatus.FAILED,
                                error="larger than 5 MB")
    url = reverse("inbox:conversation", args=[conv(contact).pk])
    with django_assert_max_num_queries(23):  # the page's fixed cost; none per media message (6 here)
        page = client.get(url).content.decode()
    assert f'<img src="{stored["image"]}"' in page
    assert f'<audio controls preload="none" src="{stored["audio"]}">' in page
    assert f'<video controls preload="none" src="{stored["video"]}">' in page
    assert f'href="{stored["document"]}"' in page and "slip.pdf" in page
    assert "downloading…" in page and "not stored: larger than 5 MB" in page
