"""Scenario 5, the 22-part fixture message: order and spacing as the fake Graph API received them.

A fixture list long enough to need 22 WhatsApp text messages (4,096 characters each at
most) is sent with ``conversations.services.sending.send_long_text`` to one contact. The
parts must arrive all, in order, each at least the configured gap after the one before.
The floor is that gap itself: the spacing an ideal sender would show. Rows report the
gaps between consecutive arrivals.
"""

from __future__ import annotations

import itertools
import time

from bench.scenarios.base import Row, ScenarioResult, Series, Status, Summary
from bench.scenarios.common import Context, NotAvailable

NAME = "multipart"
TITLE = "22-part fixture message"
PARTS = 22


def fixture_list(parts: int = PARTS) -> str:
    """A realistic fixture list whose line-boundary split gives exactly ``parts`` messages.

    Each line starts with its number, so the receiver can tell the order of the parts.
    """
    from meta_integration.message_bodies import split_text

    teams = ["Arsenal", "Chelsea", "Liverpool", "Everton", "Dynamos", "Highlanders", "CAPS United", "FC Platinum",
             "Kaizer Chiefs", "Orlando Pirates", "Mamelodi Sundowns", "Real Madrid", "Barcelona", "Napoli"]
    lines: list[str] = []
    number = 0
    while len(split_text("\n".join(lines))) < parts or not lines:
        number += 1
        home, away = teams[number % len(teams)], teams[(number * 5 + 3) % len(teams)]
        lines.append(f"{number:04d}. {home} vs {away} | Sat 14:{number % 60:02d} | "
                     f"1: {1.5 + number % 7 / 10:.2f}  X: {3.1 + number % 5 / 10:.2f}  2: {2.4 + number % 9 / 10:.2f}")
    while len(split_text("\n".join(lines))) > parts:
        lines.pop()
    return "\n".join(lines)


def run(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE, description=__doc__.split("\n\n", 1)[1].strip(),
                            latency_label="gap between consecutive parts")
    gap = ctx.stack.options.multipart_gap_seconds
    try:
        from conversations.services.sending import send_long_text
    except ImportError as exc:
        result.status, result.reason = Status.NOT_AVAILABLE, f"conversations.services.sending.send_long_text: {exc}"
        return result
    try:
        arrivals, ordered = _send_and_collect(ctx, send_long_text, gap)
    except NotAvailable as exc:
        result.status, result.reason = Status.NOT_AVAILABLE, str(exc)
        return result
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    ideal = Row(f"floor: the configured gap ({gap:g} s)", f"{PARTS} parts",
                Summary(PARTS - 1, PARTS - 1, 0, 1 / gap if gap else 0.0, gap, gap, gap, gap), floor=True)
    window = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    too_close = sum(1 for g in gaps if g < gap)
    row = Row("send_long_text -> fake Graph API", f"{PARTS} parts, gap {gap:g} s",
              Summary.of(gaps, attempted=PARTS - 1, window=window),
              note=f"received {len(arrivals)}/{PARTS}, order {'kept' if ordered else 'BROKEN'}, "
                   f"{too_close} gaps shorter than {gap:g} s, span {window:.1f} s (ideal {gap * (PARTS - 1):.1f} s)")
    result.add_rows([ideal, row])
    result.series.append(Series("gaps between parts", tuple(gaps), tuple(arrivals), arrivals[0] if arrivals else 0))
    if not ordered or len(arrivals) != PARTS:
        result.status = Status.FAILED
        result.reason = f"received {len(arrivals)}/{PARTS} parts, order {'kept' if ordered else 'broken'}"
    return result


def _send_and_collect(ctx: Context, send_long_text, gap: float) -> tuple[list[float], bool]:
    from django.utils import timezone

    from conversations.models import Contact
    from meta_integration.models import MetaAppConfig

    wa_id = str(ctx.wa_base())
    config = MetaAppConfig.objects.get(phone_number_id=ctx.stack.env["META_PHONE_NUMBER_ID"])
    contact = Contact.objects.create(wa_id=wa_id, profile_name="Fixture Fan", app_config=config,
                                     last_inbound_at=timezone.now())
    text = fixture_list()
    since = ctx.stack.fake_last_seq()
    send_long_text(contact, text, gap_seconds=gap)
    bound = gap * PARTS * 2 + 30
    deadline = time.monotonic() + bound
    records: list[dict] = []
    while time.monotonic() < deadline and len(records) < PARTS:
        records = [r for r in ctx.stack.fake_messages(since) if r.get("to") == wa_id]
        ctx.progress(f"22-part message: {len(records)}/{PARTS} parts received")
        time.sleep(0.25)
    if not records:
        raise NotAvailable(f"send_long_text wrote the parts but none reached the fake Graph API within "
                           f"{bound:.0f} s (meta_integration.send_message: issue 4)")
    records.sort(key=lambda r: r["received_at"])
    texts = [r["body"]["text"]["body"] for r in records]
    numbers = [int(t.split(".", 1)[0]) for t in texts]
    in_order = numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    return [r["received_at"] for r in records], in_order
