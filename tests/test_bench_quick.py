"""The benchmarks cannot rot: their pure parts behave, and a quick run completes with a report.

No timing is asserted anywhere here: the figures belong to ``bench/REPORT.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.load import LoadError, LoadSpec, build_requests, run_schedule
from bench.report import fmt_seconds, markdown_table, row_cells
from bench.scenarios.base import Curve, Row, Summary, Table, compare, per_second, percentile
from bench.stack import floor_web_argv, floor_worker_argv, gunicorn_argv, set_option
from meta_integration.payloads import parse_webhook
from meta_integration.signatures import verify_signature
from whatsappcrm_backend.routing_check import compose_command

ROOT = Path(__file__).resolve().parent.parent

SPEC = {
    "url": "http://127.0.0.1:8000/webhooks/meta/",
    "rate": 50.0,
    "duration": 1.0,
    "max_requests": 100,
    "app_secret": "s3cret",
    "phone_number_id": "109876543210123",
    "display_phone_number": "15550109999",
    "wa_id_base": 26377000000000,
}


# --------------------------------------------------------------------------- statistics


def test_percentile_interpolates_between_ranks():
    values = [0.010, 0.020, 0.030, 0.040, 0.100]
    assert percentile(values, 0) == 0.010
    assert percentile(values, 50) == 0.030
    assert percentile(values, 100) == 0.100
    assert percentile(values, 95) == pytest.approx(0.088)
    assert percentile([0.5], 99) == 0.5


@pytest.mark.parametrize(("values", "q", "field"), [([], 50, "values"), ([1.0], 101, "q"), ([1.0], -1, "q")])
def test_percentile_refuses_bad_input(values, q, field):
    with pytest.raises(ValueError, match=field):
        percentile(values, q)


def test_summary_counts_errors_and_throughput():
    summary = Summary.of([0.1, 0.2, 0.3, 0.4], attempted=5, window=2.0)
    assert (summary.count, summary.completed, summary.errors) == (5, 4, 1)
    assert summary.throughput == 2.0
    assert summary.p50 == pytest.approx(0.25)
    assert summary.max == 0.4
    empty = Summary.of([], attempted=3, window=1.0)
    assert (empty.errors, empty.p50) == (3, None)
    with pytest.raises(ValueError, match="attempted"):
        Summary.of([0.1, 0.2], attempted=1, window=1.0)


def test_rows_are_compared_with_their_floor():
    floor = Row("bare", "80/s", Summary.of([0.01, 0.01, 0.01], attempted=3, window=1.0), floor=True)
    project = Row("project", "80/s", Summary.of([0.04, 0.04], attempted=3, window=1.0))
    compared = compare(project, floor)
    assert compared.ratio_p50 == pytest.approx(4.0)
    assert compared.ratio_throughput == pytest.approx(2 / 3)
    assert compare(floor, floor) is floor
    cells = row_cells(compared)
    assert cells[8] == "4.00x" and cells[2] == "2 / 3"


def test_table_rows_must_fit_columns():
    Table("ok", ("a", "b"), (("1", "2"),))
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        Table("bad", ("a", "b"), (("1", "2"), ("3",)))


def test_curve_needs_one_y_per_x():
    Curve("odds", (100.0, 1000.0), (0.5, 4.0))
    with pytest.raises(ValueError, match="ys"):
        Curve("odds", (100.0, 1000.0), (0.5,))


def test_per_second_bins_include_empty_seconds():
    assert per_second([100.2, 100.7, 102.5], start=100.0) == [(0.0, 2), (1.0, 0), (2.0, 1)]
    assert per_second([], start=0.0) == []


def test_report_formats_units_and_escapes_cells():
    assert fmt_seconds(0.0042) == "4.2 ms"
    assert fmt_seconds(0.25) == "250 ms"
    assert fmt_seconds(2.5) == "2.50 s"
    assert fmt_seconds(None) == "-"
    table = markdown_table(("a", "b"), [("x|y", "z")])
    assert table.splitlines()[2] == "| x\\|y | z |"


# --------------------------------------------------------------------------- commands from compose


def test_gunicorn_keeps_compose_options_and_binds_loopback():
    argv = gunicorn_argv(compose_command("web"), "127.0.0.1:9999")
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:9999"
    compose_web = compose_command("web")[-1]
    for option in ("--workers", "--worker-class", "--threads"):
        value = argv[argv.index(option) + 1]
        assert f"{option} {value}" in compose_web


def test_floor_worker_uses_the_io_workers_pool_on_its_own_app_and_queue():
    io = compose_command("celery_io_worker")
    floor = floor_worker_argv(io)
    assert floor[floor.index("-A") + 1] == "bench.floor_tasks"
    assert floor[floor.index("-Q") + 1] == "bench_floor"
    pool = [a for a in io if a.startswith("--pool") or a.startswith("--concurrency")]
    assert pool and all(a in floor for a in pool)


def test_floor_web_is_the_compose_gunicorn_on_the_bare_django():
    web = gunicorn_argv(compose_command("web"), "127.0.0.1:9999")
    floor = floor_web_argv(web, "127.0.0.1:9998")
    assert "bench.floor_wsgi:application" in floor
    assert not any(a.endswith("whatsappcrm_backend.wsgi:application") for a in floor)
    assert floor[floor.index("--bind") + 1] == "127.0.0.1:9998"
    for option in ("--workers", "--worker-class", "--threads"):
        assert floor[floor.index(option) + 1] == web[web.index(option) + 1]


def test_the_floor_imports_nothing_of_the_project():
    """The floor's web and Celery sides load without any project package (and serve their views)."""
    script = (
        "import sys, io\n"
        "import bench.floor_tasks, bench.floor_wsgi\n"
        "from bench.floor_wsgi import application\n"
        "environ = {'REQUEST_METHOD': 'POST', 'PATH_INFO': '/bench/floor/ok/', 'SERVER_NAME': '127.0.0.1',\n"
        "           'SERVER_PORT': '80', 'wsgi.input': io.BytesIO(b'{}'), 'CONTENT_LENGTH': '2',\n"
        "           'wsgi.url_scheme': 'http', 'SERVER_PROTOCOL': 'HTTP/1.1'}\n"
        "status = []\n"
        "application(environ, lambda s, h, e=None: status.append(s))\n"
        "project = ('whatsappcrm_backend', 'meta_integration', 'conversations', 'flows', 'football_data_app',\n"
        "           'campaigns')\n"
        "print(status[0], sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in project}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "200 OK []"


def test_set_option_replaces_short_long_and_equals_forms_or_appends():
    assert set_option(["w", "-n", "a@%h"], "-n", "b@%h") == ["w", "-n", "b@%h"]
    assert set_option(["w", "--hostname=a"], "-n", "b") == ["w", "--hostname=b"]
    assert set_option(["w"], "-Q", "q") == ["w", "-Q", "q"]


def test_cost_counts_redis_commands_and_round_trips(redis_client):
    """A plain command is one round trip, a pipeline is its commands in one; nothing else counts."""
    from django.conf import settings

    script = (
        "import redis, uuid\n"
        "from bench.cost import METER, instrument_redis\n"
        "instrument_redis()\n"
        f"client = redis.Redis.from_url({settings.REDIS_URL!r})\n"
        "key = 'bench:test:' + uuid.uuid4().hex\n"
        "client.set(key, 1)\n"
        "client.pipeline().incr(key).incr(key).expire(key, 5).execute()\n"
        "client.pipeline().execute()\n"
        "assert int(client.get(key)) == 3\n"
        "client.delete(key)\n"
        "print(METER.current.redis_commands, METER.current.redis_round_trips)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["6", "4"]  # set, get, delete + 3 in one pipeline; the empty one sends nothing


# --------------------------------------------------------------------------- the load generator


@pytest.mark.parametrize(("field", "value"), [
    ("url", "https://127.0.0.1:8000/x"),
    ("url", "http://127.0.0.1/x"),
    ("rate", 0),
    ("duration", -1),
    ("max_requests", 0),
    ("app_secret", ""),
    ("phone_number_id", "abc"),
    ("wa_id_base", 12),
    ("timeout", 0),
    ("max_connections", 0),
])
def test_load_spec_refuses_bad_settings_by_name(field, value):
    with pytest.raises(LoadError) as error:
        LoadSpec(**{**SPEC, field: value})
    assert error.value.field == field


def test_load_spec_count_is_bounded_by_max_requests():
    assert LoadSpec(**SPEC).count == 50
    assert LoadSpec(**{**SPEC, "rate": 1000.0}).count == 100


def test_requests_are_signed_meta_webhooks_from_distinct_users():
    spec = LoadSpec(**{**SPEC, "duration": 0.1})
    requests = build_requests(spec)
    assert len(requests) == 5
    senders = []
    for raw in requests:
        head, body = raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /webhooks/meta/ HTTP/1.1"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert int(headers["Content-Length"]) == len(body)
        assert verify_signature(body, headers["X-Hub-Signature-256"], "s3cret")
        assert not verify_signature(body, headers["X-Hub-Signature-256"], "other")
        [message] = parse_webhook(json.loads(body)).messages
        assert (message.text, message.phone_number_id) == ("hi", "109876543210123")
        senders.append(message.from_wa_id)
    assert senders == [str(26377000000000 + i) for i in range(5)]


def test_schedule_is_open_loop_against_a_slow_server():
    """Requests go out on schedule even though each answer takes 0.4 s (20 in flight at once)."""
    hits: list[float] = []

    async def scenario():
        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                    await reader.readexactly(length)
                    hits.append(time.time())
                    await asyncio.sleep(0.4)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spec = LoadSpec(**{**SPEC, "url": f"http://127.0.0.1:{port}/webhooks/meta/", "rate": 20.0,
                           "duration": 1.0, "timeout": 5.0, "drain_timeout": 2.0})
        try:
            return await run_schedule(spec, build_requests(spec))
        finally:
            server.close()

    result = asyncio.run(scenario())
    assert len(result.records) == 20
    assert all(r.ok for r in result.records), [r.error for r in result.records if not r.ok]
    # closed loop over one connection would need 20 x 0.4 s = 8 s; open loop sends all within ~1 s
    assert max(hits) - min(hits) < 2.0
    assert all(r.latency >= 0.4 for r in result.records)
    dues = [r.due_at for r in result.records]
    assert dues == sorted(dues) and dues[1] - dues[0] == pytest.approx(0.05)


def test_schedule_records_refused_connections_as_errors():
    spec = LoadSpec(**{**SPEC, "url": "http://127.0.0.1:9/webhooks/meta/", "rate": 20.0, "duration": 0.2,
                       "timeout": 1.0, "drain_timeout": 0.5})
    result = asyncio.run(run_schedule(spec, build_requests(spec)))
    assert len(result.records) == 4
    assert all(r.status is None and r.error for r in result.records)


# --------------------------------------------------------------------------- scenario data


def test_fixture_list_splits_into_exactly_22_ordered_parts():
    from bench.scenarios.multipart import fixture_list
    from meta_integration.message_bodies import split_text

    parts = split_text(fixture_list())
    assert len(parts) == 22
    firsts = [int(part.split(".", 1)[0]) for part in parts]
    assert firsts == sorted(firsts) and firsts[0] == 1
    assert all(len(part) <= 4096 for part in parts)


# --------------------------------------------------------------------------- the quick run


@pytest.mark.workers
@pytest.mark.timeout(900)
def test_quick_run_completes_and_writes_report_and_plots(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "all", "--quick", "--output", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840,
    )
    report = tmp_path / "REPORT.md"
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{report.read_text()[-3000:] if report.exists() else ''}"
    text = report.read_text()
    assert "quick mode" in text
    for title in ("Cost per message", "Webhook ingest", "Reply latency", "football_data", "HIGH vs LOW", "22-part",
                  "Sending", "Football", "campaign while users write"):
        assert title in text
    assert "| **floor:" in text  # at least one floor row was measured
    cost = text.split("Cost per message", 2)[2].split("\n## ", 1)[0]
    for stage in ("| webhook POST |", "| status webhook: sent |", "| status webhook: read |",
                  "| bare view + publish |", "| bench.floor.send |", "| **total** |"):
        assert stage in cost, stage
    assert "Knee: the highest offered rate" in text
    plots = sorted((tmp_path / "plots").glob("*.png"))
    assert plots, "no plots written"
    for plot in plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{plot.name}" in text
