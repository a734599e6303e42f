"""Webhooks through real adw-ingest and PostgreSQL, delivered to real HTTP receivers on
loopback: a receiver that answers 500 then 200, one that is down and comes back, one that never
answers, a queue bound crossed, only the listed system events sent, two webhooks, a 400 not
retried, URLs that are not http(s) refused at start."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import adwtest
import pytest
from faultload import metric

pytestmark = pytest.mark.needs_bin("adw-ingest")

PUBLIC = "https://dash.example.com/"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next of `statuses` (then
    200), records every attempt (time, status, body) and the bodies it answered 2xx to. With
    stall, it reads the request and never answers (until stop)."""

    def __init__(self, port=None, statuses=(), stall=False):
        self.port = port or adwtest.free_port()
        self.statuses = list(statuses)
        self.stall = stall
        self.lock = threading.Lock()
        self.attempts = []  # (monotonic time, status, body dict, headers)
        self.bodies = []
        self.release = threading.Event()
        self.httpd = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook/T0000/B0000/secret"

    def start(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                with rec.lock:
                    st = 0 if rec.stall else (rec.statuses.pop(0) if rec.statuses else 200)
                    rec.attempts.append((time.monotonic(), st, body, dict(self.headers)))
                    if 200 <= st < 300:
                        rec.bodies.append(body)
                if rec.stall:
                    rec.release.wait(60)
                    return
                self.send_response(st)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.release.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def wait_bodies(self, n, timeout=15.0):
        adwtest.wait_for(lambda: len(self.bodies) >= n, timeout, what=f"{n} webhook bodies")
        with self.lock:
            return list(self.bodies)


@pytest.fixture
def receivers():
    made = []

    def make(**kw):
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def sysev(event, adw_id="run1", **kw):
    e = {"type": "system", "adw_id": adw_id, "event": event}
    e.update(kw)
    return e


def post(ingest, events):
    with ingest.http() as c:
        st, _, body = c.post_json("/api/events", events)
        assert st == 200, body
        return body


def hooked(make_ingest, *urls, **env):
    env.setdefault("ADW_INGEST_STALL_S", "0")
    env.setdefault("NO_PROXY", "127.0.0.1")  # libcurl honours the proxy variables
    return make_ingest(ADW_INGEST_WEBHOOKS=",".join(urls), **env)


def series(name, i=0, reason=None):
    labels = f'webhook="{i}"' + (f',reason="{reason}"' if reason else "")
    return f"{name}{{{labels}}}"


def test_500_then_200_delivered_once_after_a_retry(make_ingest, receivers):
    rec = receivers(statuses=[500]).start()
    ing = hooked(make_ingest, rec.url, ADW_INGEST_PUBLIC_URL=PUBLIC)
    ids = post(ing, sysev("adw_failed", adw_id="abc123", step="build",
                          summary="3 tests failed <!channel> & co", payload={"exit": 1}))
    [body] = rec.wait_bodies(1)
    time.sleep(1.5)  # nothing more comes
    assert len(rec.bodies) == 1
    assert [a[1] for a in rec.attempts] == [500, 200]
    assert rec.attempts[1][0] - rec.attempts[0][0] >= 0.9, "the retry waits for its backoff"
    assert rec.attempts[0][2] == body, "the retry sends the same body"
    assert rec.attempts[0][3]["Content-Type"] == "application/json"
    assert body["text"] == (":x: Run `abc123` failed at step build: 3 tests failed &lt;!channel&gt;"
                            " &amp; co — https://dash.example.com/#/runs/abc123")
    ev = body["event"]
    assert ev["id"] == ids["id"]
    assert ev["adw_id"] == "abc123" and ev["event"] == "adw_failed" and ev["type"] == "system"
    assert ev["step"] == "build" and ev["payload"] == {"exit": 1}
    assert ev["received_at"].endswith("Z")
    # as the REST API would give it
    assert list(ev)[:2] == ["id", "received_at"]
    assert metric(ing, series("adw_ingest_webhook_delivered_total")) == 1
    assert metric(ing, series("adw_ingest_webhook_failed_total")) == 1
    assert metric(ing, series("adw_ingest_webhook_queued")) == 0


def test_text_without_public_url_has_no_link_and_is_capped(make_ingest, receivers):
    rec = receivers().start()
    ing = hooked(make_ingest, rec.url)
    post(ing, sysev("run_stalled", adw_id="r-9", summary="é" * 500))
    post(ing, sysev("budget_exceeded", adw_id="r-9"))
    post(ing, sysev("approval_requested", adw_id="r-9", step="deploy", summary="rm -rf /tmp/x"))
    b = rec.wait_bodies(3)
    t = b[0]["text"]
    assert t.startswith(":hourglass: Run `r-9` stalled: éé")
    assert len(t.encode()) <= 300 and "#/runs" not in t
    assert b[1]["text"] == ":money_with_wings: Run `r-9` went over its budget"
    assert b[2]["text"] == ":raised_hand: Run `r-9` waits for an approval at step deploy: rm -rf /tmp/x"


def test_receiver_down_then_back_gets_what_it_missed_in_order(make_ingest, receivers):
    rec = receivers()  # port chosen, nothing listening yet
    ing = hooked(make_ingest, rec.url)
    for i in range(5):
        post(ing, sysev("adw_failed", adw_id=f"run{i}", summary=f"failure {i}"))
    adwtest.wait_for(lambda: (metric(ing, series("adw_ingest_webhook_failed_total")) or 0) >= 1,
                     10, what="a failed attempt")
    time.sleep(3)
    rec.start()
    bodies = rec.wait_bodies(5, timeout=20)
    assert [b["event"]["summary"] for b in bodies] == [f"failure {i}" for i in range(5)]
    ids = [b["event"]["id"] for b in bodies]
    assert ids == sorted(ids)
    assert metric(ing, series("adw_ingest_webhook_delivered_total")) == 5
    assert "connect" in ing.log_text().lower()  # the failure was logged (host only)
    assert "secret" not in ing.log_text(), "the URL's path is never logged"


def test_receiver_that_never_answers_times_out_and_ingest_keeps_pace(make_ingest, receivers):
    rec = receivers(stall=True).start()
    ing = hooked(make_ingest, rec.url)
    post(ing, sysev("adw_failed", summary="first"))
    adwtest.wait_for(lambda: len(rec.attempts) >= 1, 5, what="the stalled POST")
    t0 = time.monotonic()
    with ing.http() as c:
        for i in range(300):
            s = time.monotonic()
            st, _, body = c.post_json("/api/events", [
                {"type": "adw_event", "adw_id": "run1", "event_type": "TextBlock", "seq": i},
                sysev("adw_failed", summary=f"more {i}")])
            assert st == 200, body
            assert time.monotonic() - s < 2.0, "a POST waited for the webhook"
    assert time.monotonic() - t0 < 30
    assert metric(ing, series("adw_ingest_webhook_queued")) == 301
    assert metric(ing, series("adw_ingest_webhook_failed_total")) == 0
    # the 10 s timeout ends the stalled attempt; it is retried
    adwtest.wait_for(lambda: metric(ing, series("adw_ingest_webhook_failed_total")) == 1, 15,
                     what="the timeout")
    elapsed = time.monotonic() - rec.attempts[0][0]
    assert 9 <= elapsed <= 16
    assert "timeout" in ing.log_text().lower() or "timed out" in ing.log_text().lower()


def test_queue_bound_crossed_drops_the_oldest_counted_and_logged(make_ingest, receivers):
    rec = receivers()
    ing = hooked(make_ingest, rec.url, ADW_INGEST_WEBHOOK_QUEUE="2")
    for i in range(6):
        post(ing, sysev("adw_failed", adw_id=f"q{i}", summary=f"n{i}"))
        time.sleep(0.1)
    dropped = metric(ing, series("adw_ingest_webhook_dropped_total", reason="overflow"))
    # one event in flight (retrying), two queued: the rest dropped, oldest first
    assert dropped == 3
    ing.wait_log("queue over its bound (2 events, 16 MiB), the oldest dropped", 5)
    rec.start()
    bodies = rec.wait_bodies(3, timeout=20)
    time.sleep(1)
    assert [b["event"]["summary"] for b in rec.bodies] == ["n0", "n4", "n5"]
    assert metric(ing, series("adw_ingest_webhook_delivered_total")) == 3
    assert len(bodies) == 3


def test_queue_byte_bound_crossed_drops_the_oldest(make_ingest, receivers):
    """Besides the count, 16 MiB of bodies per webhook: 300 events of ~60 KB queued behind the
    one in flight cross it; the oldest queued are dropped, the newest kept, in order."""
    rec = receivers()
    ing = hooked(make_ingest, rec.url)
    big = "x" * 60_000
    post(ing, sysev("adw_failed", adw_id="b0", summary="n0", payload={"log": big}))
    adwtest.wait_for(lambda: (metric(ing, series("adw_ingest_webhook_failed_total")) or 0) >= 1,
                     10, what="the first event in flight")
    n = 300
    for first in range(1, n + 1, 15):
        post(ing, [sysev("adw_failed", adw_id=f"b{i}", summary=f"n{i}", payload={"log": big})
                   for i in range(first, first + 15)])
    dropped = int(metric(ing, series("adw_ingest_webhook_dropped_total", reason="overflow")))
    assert 0 < dropped < n
    assert metric(ing, series("adw_ingest_webhook_queued")) == 1 + n - dropped
    ing.wait_log("queue over its bound (1000 events, 16 MiB)", 5)
    rec.start()
    bodies = rec.wait_bodies(1 + n - dropped, timeout=60)
    assert [b["event"]["summary"] for b in bodies] == \
        ["n0"] + [f"n{i}" for i in range(dropped + 1, n + 1)]
    assert bodies[-1]["event"]["payload"]["log"] == big
    # what was kept fits under 16 MiB, one more would not
    size = len(json.dumps(bodies[-1], separators=(",", ":")).encode())
    assert (n - dropped) * size <= 16 << 20 < (n - dropped + 1) * size


def test_only_the_listed_events_are_sent(make_ingest, receivers):
    rec = receivers().start()
    ing = hooked(make_ingest, rec.url)
    post(ing, [{"type": "adw_event", "adw_id": "run1", "event_type": "ToolUseBlock",
                "event": "adw_failed"},
               sysev("adw_step_start", step="plan"),
               sysev("adw_complete", status="success"),
               sysev("run_stalled", summary="No event for 10 min"),
               sysev("adw_failed", summary="boom")])
    bodies = rec.wait_bodies(2)
    time.sleep(1.5)
    assert [b["event"]["event"] for b in rec.bodies] == ["run_stalled", "adw_failed"]
    assert len(bodies) == 2
    ing.stop()  # one writer at a time

    rec2 = receivers().start()
    ing2 = hooked(make_ingest, rec2.url, ADW_INGEST_WEBHOOK_EVENTS=" adw_complete ")
    post(ing2, [sysev("adw_failed"), sysev("adw_complete", adw_id="run2", status="success")])
    rec2.wait_bodies(1)
    time.sleep(1.5)
    assert [b["event"]["event"] for b in rec2.bodies] == ["adw_complete"]
    assert rec2.bodies[0]["text"] == ":bell: Run `run2`: adw_complete"


def test_two_webhooks_both_served(make_ingest, receivers):
    a = receivers().start()
    b = receivers(statuses=[503, 429]).start()
    ing = hooked(make_ingest, a.url, b.url)
    for i in range(3):
        post(ing, sysev("adw_failed", adw_id=f"t{i}"))
    ba = a.wait_bodies(3)
    bb = b.wait_bodies(3, timeout=20)
    assert [x["event"]["adw_id"] for x in ba] == ["t0", "t1", "t2"]
    assert [x["event"]["adw_id"] for x in bb] == ["t0", "t1", "t2"]
    assert metric(ing, series("adw_ingest_webhook_failed_total", 0)) == 0
    assert metric(ing, series("adw_ingest_webhook_failed_total", 1)) == 2  # 503 and 429 retried
    assert metric(ing, series("adw_ingest_webhook_delivered_total", 1)) == 3


def test_4xx_dropped_not_retried(make_ingest, receivers):
    rec = receivers(statuses=[400]).start()
    ing = hooked(make_ingest, rec.url)
    post(ing, sysev("adw_failed", summary="refused one"))
    post(ing, sysev("adw_failed", summary="accepted one"))
    rec.wait_bodies(1)
    time.sleep(1.5)
    assert [a[1] for a in rec.attempts] == [400, 200]
    assert rec.bodies[0]["event"]["summary"] == "accepted one"
    assert metric(ing, series("adw_ingest_webhook_dropped_total", reason="rejected")) == 1
    assert metric(ing, series("adw_ingest_webhook_failed_total")) == 0
    ing.wait_log("HTTP 400, event dropped", 5)


def test_shutdown_tries_then_drops_what_is_queued(make_ingest, receivers):
    rec = receivers()
    ing = hooked(make_ingest, rec.url)
    post(ing, [sysev("adw_failed", summary="a"), sysev("adw_failed", summary="b")])
    adwtest.wait_for(lambda: (metric(ing, series("adw_ingest_webhook_failed_total")) or 0) >= 1,
                     10, what="a failed attempt")
    t0 = time.monotonic()
    ing.terminate()
    assert ing.wait(15) == 0
    assert time.monotonic() - t0 < 8
    assert "2 events undelivered at shutdown" in ing.log_text()


@pytest.mark.parametrize("env,needle", [
    ({"ADW_INGEST_WEBHOOKS": "ftp://x"}, "'ftp://x' is not http:// or https://"),
    ({"ADW_INGEST_WEBHOOKS": "localhost:80"}, "'localhost:80' is not http:// or https://"),
    ({"ADW_INGEST_WEBHOOKS": "http://"}, "'http://' is not http:// or https://"),
    ({"ADW_INGEST_WEBHOOKS": "http:///hook"}, "'http:///hook' has no host"),
    ({"ADW_INGEST_WEBHOOKS": "https://:443/x"}, "has no host"),
    ({"ADW_INGEST_WEBHOOKS": "http://a.example/x,"}, "empty item in the webhooks list"),
    ({"ADW_INGEST_WEBHOOKS": "http://a.example:0/"}, "bad port"),
    ({"ADW_INGEST_WEBHOOKS": "http://a b/"}, "blank or control character"),
    ({"ADW_INGEST_WEBHOOKS": ",".join(f"http://h{i}.example/" for i in range(17))},
     "more than 16 webhooks"),
    ({"ADW_INGEST_WEBHOOKS": "http://h.example/", "ADW_INGEST_WEBHOOK_EVENTS": "adw-failed"},
     "event name 'adw-failed' is not [a-z0-9_]"),
    ({"ADW_INGEST_WEBHOOKS": "http://h.example/", "ADW_INGEST_WEBHOOK_QUEUE": "0"},
     "ADW_INGEST_WEBHOOK_QUEUE"),
    ({"ADW_INGEST_PUBLIC_URL": "dash.example.com"}, "is not http:// or https://"),
])
def test_bad_webhook_options_refused_at_start(db, env, needle):
    ing = adwtest.Ingest(db, start=False, **env)
    ing.start()
    assert ing.wait(15) == 2
    assert needle in ing.log_text()
