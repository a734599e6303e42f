"""adw-gateway: GET /api/search over events stored by a real adw-ingest in PostgreSQL: every
word must match (case-insensitively) in the summary, the tool name or the target; newest
first; paging with next_before; the adw_id filter; queries shaped like SQL injection match
only literally; the limits on q, its words and limit; a read token's scope."""

import re
import urllib.parse
from pathlib import Path

import pytest
from test_gateway_common import ev, post

pytestmark = pytest.mark.needs_bin("adw-ingest", "adw-gateway")

ROOT = Path(__file__).resolve().parents[2]
SESSION = "7c1e52a4-3b7f-4c55-9d1e-0f2a6b8c9d10"


def hook(adw_id, event, tool, tool_input, summary, step="build"):
    """An event as adw-send's hook mode sends a Claude Code hook body."""
    payload = {"session_id": SESSION, "transcript_path": f"/home/u/.claude/{SESSION}.jsonl",
               "cwd": "/repo", "hook_event_name": event, "tool_name": tool,
               "tool_input": tool_input, "tool_use_id": f"toolu_{abs(hash(summary)) % 10**8}"}
    return ev(adw_id, step=step, event_type=event, summary=summary, payload=payload)


def search(c, headers=None, **params):
    st, _, body = c.get("/api/search?" + urllib.parse.urlencode(params), headers=headers)
    return st, body


def ids_of(body):
    return [e["id"] for e in body["events"]]


@pytest.fixture
def stored(ingest):
    evs = [
        hook("run-a", "PreToolUse", "Write", {"file_path": "/src/Auth.py", "content": "x"},
             "Write /src/Auth.py"),
        hook("run-b", "PreToolUse", "Read", {"file_path": "/src/auth.py"}, "Read /src/auth.py"),
        hook("run-a", "PreToolUse", "Bash", {"command": "pytest -k needle_only_in_command"},
             "Bash"),  # the target alone holds the word
        hook("run-b", "PostToolUse", "Grep", {"pattern": "TODO", "path": "/lib"},
             "something else"),  # tool name and target only, not in the summary
        hook("run-c", "PreToolUse", "WebFetch", {"url": "https://docs.example.org/Jansson"},
             "WebFetch https://docs.example.org/Jansson"),
        hook("run-c", "PreToolUse", "WebSearch", {"query": "libwebsockets ring buffer"},
             "WebSearch: libwebsockets ring buffer"),
        ev("run-a", step="plan", event_type="TextBlock", summary="Planning the AUTH rewrite"),
        ev("run-b", step="plan", event_type="TextBlock", summary="nothing relevant"),
        ev("run-c", event_type="TextBlock", summary="payload words are not searched",
           payload={"text": "auth zebra"}),
    ]
    return post(ingest, evs), evs


def test_words_across_runs_case_and_fields(gateway, stored):
    ids, evs = stored
    c = gateway.http()
    try:
        st, body = search(c, q="auth")
        assert st == 200
        # newest first, across runs, any case; payload.text is not searched
        assert ids_of(body) == [ids[6], ids[1], ids[0]] and body["next_before"] is None
        for q in ("AUTH", "Auth", "  auth\t"):
            assert ids_of(search(c, q=q)[1]) == [ids[6], ids[1], ids[0]], q
        # every word must match
        assert ids_of(search(c, q="auth .py")[1]) == [ids[1], ids[0]]
        assert ids_of(search(c, q="write auth")[1]) == [ids[6], ids[0]]  # "rewrite" holds it
        assert ids_of(search(c, q="auth zebra")[1]) == []
        # tool name only, target only (command, pattern, path, url, query)
        assert ids_of(search(c, q="grep")[1]) == [ids[3]]
        assert ids_of(search(c, q="needle_only_in_command")[1]) == [ids[2]]
        assert ids_of(search(c, q="todo /lib")[1]) == [ids[3]]
        assert ids_of(search(c, q="jansson")[1]) == [ids[4]]
        assert ids_of(search(c, q="ring websockets")[1]) == [ids[5]]
        # the events as /api/events gives them
        st, _, page = c.get("/api/events?limit=1000")
        by_id = {e["id"]: e for e in page["events"]}
        body = search(c, q="auth")[1]
        assert body["events"] == [by_id[i] for i in ids_of(body)]
        assert body["events"][1]["payload"]["tool_input"] == {"file_path": "/src/auth.py"}
        assert body["events"][1]["summary"] == "Read /src/auth.py"
        # adw_id
        assert ids_of(search(c, q="auth", adw_id="run-a")[1]) == [ids[6], ids[0]]
        assert ids_of(search(c, q="auth", adw_id="run-b,run-c")[1]) == [ids[1]]
        assert ids_of(search(c, q="auth", adw_id="nope")[1]) == []
    finally:
        c.close()


def test_paging_with_next_before(gateway, ingest):
    evs = []
    for i in range(57):
        run = f"page-{i % 3}"
        evs.append(hook(run, "PreToolUse", "Edit", {"file_path": f"/src/mod{i}.c"},
                        f"Edit /src/mod{i}.c"))
        evs.append(ev(run, summary=f"unrelated {i}"))
    ids = post(ingest, evs)
    want = [i for i, e in zip(ids, evs) if "Edit" in e["summary"]][::-1]
    c = gateway.http()
    try:
        got, before, pages = [], None, 0
        while True:
            params = {"q": "edit src", "limit": 10}
            if before is not None:
                params["before"] = before
            st, body = search(c, **params)
            assert st == 200
            pages += 1
            got += ids_of(body)
            assert len(body["events"]) <= 10
            before = body["next_before"]
            if before is None:
                break
            assert before == body["events"][-1]["id"]
        assert got == want and pages == 6  # 10 x 5 and 7
        # the default limit is 50; 200 is the most
        body = search(c, q="edit")[1]
        assert ids_of(body) == want[:50] and body["next_before"] == want[49]
        body = search(c, q="edit", limit=200)[1]
        assert ids_of(body) == want and body["next_before"] is None
        # exactly a page's worth left: next_before is null at once
        body = search(c, q="edit", limit=57)[1]
        assert len(body["events"]) == 57 and body["next_before"] is None
        # before and adw_id together
        body = search(c, q="edit", adw_id="page-1", before=want[10], limit=200)[1]
        assert ids_of(body) == [i for i, e in zip(ids, evs)
                                if e["adw_id"] == "page-1" and "Edit" in e["summary"]
                                and i < want[10]][::-1]
    finally:
        c.close()


TRICKY = [
    "x' OR 1=1 -- y",
    "progress 100% done",
    "rate 50 done",
    "snake_case name",
    "snakeXcase name",
    r"C:\temp\file",
    "C:Xtemp",
    'say "hello"',
    "it's fine",
    "naïve café 日本語 🚀",
    "'; DROP TABLE events; --",
    "plain words",
]


@pytest.mark.parametrize("q,want", [
    ("' OR 1=1 --", [0]),  # each word literally: "'", "OR", "1=1", "--"
    ("1=1", [0]),
    ("%", [1]),
    ("100%", [1]),
    ("_", [3]),
    ("snake_case", [3]),
    ("\\", [5]),
    ("\\temp", [5]),
    ('"hello"', [7]),
    ('"', [7]),
    ("'", [0, 8, 10]),
    ("it's", [8]),
    ("naïve", [9]),
    ("日本語 🚀", [9]),
    ("café", [9]),
    ("DROP TABLE events;", [10]),
    ("%%", []),
    ("%_%", []),
    ("\\%", []),
    ("*", []),
    ("') OR ('1'='1", []),
    ("$1", []),
    ("1; SELECT pg_sleep(10)", []),
])
def test_injection_shaped_queries_match_literally(gateway, ingest, q, want):
    ids = post(ingest, [ev(f"inj-{i}", summary=s) for i, s in enumerate(TRICKY)])
    c = gateway.http()
    try:
        st, body = search(c, q=q)
        assert st == 200, (q, body)
        assert ids_of(body) == sorted((ids[i] for i in want), reverse=True), q
        # the table is still there and whole
        st, body = search(c, q="plain words")
        assert st == 200 and ids_of(body) == [ids[11]]
    finally:
        c.close()


def test_bad_queries_refused(gateway, ingest):
    post(ingest, [ev("bad-1", summary="alpha beta")])
    c = gateway.http()
    try:
        def bad(raw, word):
            st, _, body = c.get("/api/search?" + raw)
            assert st == 400 and word in body["error"], (raw, st, body)

        bad("", "q")
        bad("limit=5", "q")
        bad("q=", "at least one word")
        bad("q=%20%20%09", "at least one word")
        bad("q=" + "a" * 257, "at most 256 bytes")
        bad("q=" + urllib.parse.quote("é" * 129), "at most 256 bytes")  # 258 bytes
        bad("q=%FF%FE", "UTF-8")
        bad("q=" + "+".join("w%d" % i for i in range(9)), "at most 8 words")
        for lim in ("0", "201", "-1", "x", "", "1e2"):
            bad(f"q=alpha&limit={lim}", "limit")
        for b in ("0", "-5", "x", ""):
            bad(f"q=alpha&before={b}", "before")
        bad("q=alpha&adw_id=" + "x" * 65, "")
        # at the limits: accepted
        assert search(c, q="  " + "a" * 256 + "  ")[0] == 200
        assert search(c, q=" ".join(["alpha"] * 8))[1]["events"][0]["summary"] == "alpha beta"
        assert search(c, q="alpha", limit=1)[0] == 200
        assert search(c, q="alpha", limit=200)[0] == 200
        # POST is not a search
        st, _, _ = c.request("POST", "/api/search?q=alpha")
        assert st == 405
    finally:
        c.close()


FULL = "full-Secret-0123"
TOK_A = "tokA-9f8e7d=="
READ = f"{TOK_A}=team-a-"


def test_read_token_scope(make_gateway, ingest):
    g = make_gateway(ingest, ADW_GATEWAY_TOKEN=FULL, ADW_GATEWAY_READ_TOKENS=READ)
    runs = ["team-a-1", "team-b-1", "team-a-2", "team-ab", "xteam-a-1"]
    ids = post(ingest, [ev(r, summary=f"deploy {r}") for r in runs])
    c = g.http()
    try:
        def auth(tok):
            return {"Authorization": f"Bearer {tok}"}

        st, body = search(c, headers=auth(TOK_A), q="deploy")
        assert st == 200 and ids_of(body) == [ids[2], ids[0]]
        st, body = search(c, headers=auth(FULL), q="deploy")
        assert st == 200 and ids_of(body) == ids[::-1]
        # even a word naming another run finds nothing outside the scope
        assert ids_of(search(c, headers=auth(TOK_A), q="team-b-1")[1]) == []
        st, body = search(c, headers=auth(TOK_A), q="deploy", adw_id="team-b-1")
        assert st == 403 and "outside this token's scope" in body["error"]
        assert ids_of(search(c, headers=auth(TOK_A), q="deploy", adw_id="team-a-2")[1]) == [
            ids[2]]
        assert search(c, q="deploy")[0] == 401
        assert search(c, headers=auth("tokA-9f8e7d"), q="deploy")[0] == 401
        st, _, body = c.get("/api/search?q=deploy&token=" + urllib.parse.quote(TOK_A))
        assert st == 200 and ids_of(body) == [ids[2], ids[0]]
    finally:
        c.close()


def search_text_sql():
    """gateway/search.c's SEARCH_TEXT (its C string literals joined)."""
    src = (ROOT / "gateway" / "search.c").read_text()
    body = src[src.index("#define SEARCH_TEXT"):]
    body = body[:body.index("\n\n")]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))


def test_the_gateway_query_uses_the_index(ingest, db):
    """The gateway's expression is migration 4's: PostgreSQL answers it from events_search (the
    index of each partition of events that is part of it)."""
    post(ingest, [ev("idx", summary=f"row {i}") for i in range(50)])
    assert db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 1
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute(f"EXPLAIN SELECT id FROM events WHERE {search_text_sql()}"
                        " ILIKE '%row 4%' ORDER BY id DESC LIMIT 51")
            plan = "\n".join(r[0] for r in cur.fetchall())
            used = set(re.findall(r"Index Scan on (events_p\d+_\w+)", plan))
            assert used, plan
            for idx in used:
                cur.execute("SELECT inhparent::regclass::text FROM pg_inherits"
                            " WHERE inhrelid = %s::regclass", (idx,))
                assert cur.fetchone()[0] == "events_search", plan
    finally:
        conn.close()
