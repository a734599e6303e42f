"""The deployment: docker-compose.yml, deploy/Dockerfile, haproxy, and the same topology run
natively (PostgreSQL, one ingest, three gateways, haproxy, all on loopback)."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import adwtest
import pytest
import yaml

REPO = adwtest.REPO


def compose_config(*options, env=None):
    out = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), *options,
                          "config"], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env=None if env is None else {**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_compose_file_is_valid_and_complete():
    cfg = compose_config()
    svc = cfg["services"]
    assert set(svc) >= {"postgres", "ingest", "gateway", "haproxy"}
    assert svc["postgres"]["image"].startswith("postgres:15")
    assert any("pgdata" in str(v) for v in svc["postgres"]["volumes"])
    assert "pgdata" in cfg["volumes"]
    for name in ("postgres", "ingest", "gateway"):
        assert "healthcheck" in svc[name], name
    for name in svc:
        assert svc[name].get("restart") in ("unless-stopped", "always", "on-failure"), name
    # Start in order, by health.
    assert svc["ingest"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert svc["gateway"]["depends_on"]["ingest"]["condition"] == "service_healthy"
    assert svc["haproxy"]["depends_on"]["gateway"]["condition"] == "service_healthy"
    # Ingest publishes HTTP and ZeroMQ to the host; gateways publish nothing (scalable);
    # haproxy takes 8080.
    ports = json.dumps(svc["ingest"]["ports"])
    assert "8000" in ports and "5555" in ports
    assert "ports" not in svc["gateway"]
    assert "8080" in json.dumps(svc["haproxy"]["ports"])
    env = svc["gateway"]["environment"]
    assert env["ADW_GATEWAY_SUB"] == "tcp://ingest:5556"
    assert "DATABASE_URL" in env and "DATABASE_URL" in svc["ingest"]["environment"]
    assert "haproxy.cfg" in json.dumps(svc["haproxy"]["volumes"])


def test_compose_replica_profile():
    # Without the profile: no standby runs (only it carries a profile, nothing depends on it),
    # and the gateways read the primary only.
    plain = compose_config(env={"ADW_GATEWAY_READ_URL": ""})
    svc = plain["services"]
    assert [n for n in svc if svc[n].get("profiles")] == ["standby"]
    assert all("standby" not in json.dumps(svc[n].get("depends_on", {})) for n in svc)
    assert svc["gateway"]["environment"]["ADW_GATEWAY_READ_URL"] == ""
    # The primary allows streaming replication: WAL for standbys, a replication entry.
    pg_cmd = " ".join(svc["postgres"]["command"])
    assert "wal_level=replica" in pg_cmd and "hba_file=/etc/postgresql/pg_hba.conf" in pg_cmd
    assert "pg_hba.conf:/etc/postgresql/pg_hba.conf" in json.dumps(svc["postgres"]["volumes"])
    hba = [ln.split() for ln in (REPO / "deploy" / "pg_hba.conf").read_text().splitlines()
           if ln.strip() and not ln.startswith("#")]
    assert ["host", "replication", "all", "all", "scram-sha-256"] in hba
    assert ["host", "all", "all", "all", "scram-sha-256"] in hba
    # With the profile and the setting .env.example shows: a standby copied from the primary
    # with pg_basebackup -R, and the gateways' read URL naming it.
    url = "postgresql://adw:adw@standby:5432/adw"
    cfg = compose_config("--profile", "replica", env={"ADW_GATEWAY_READ_URL": url})
    sb = cfg["services"]["standby"]
    assert sb["image"].startswith("postgres:15") and sb["profiles"] == ["replica"]
    assert sb["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in sb and sb["restart"] == "unless-stopped"
    assert "standbydata" in json.dumps(sb["volumes"]) and "standbydata" in cfg["volumes"]
    script = " ".join(sb["entrypoint"] + sb["command"])
    for word in ("pg_basebackup", "-h postgres", " -R", "-X stream", "hot_standby=on"):
        assert word in script, word
    # The entrypoint is valid shell once compose has unescaped its $$.
    r = subprocess.run(["bash", "-n", "-c", sb["command"][0].replace("$$", "$")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert cfg["services"]["gateway"]["environment"]["ADW_GATEWAY_READ_URL"] == url
    example = (REPO / ".env.example").read_text()
    assert url in example and "--profile replica" in example


def test_env_example_documents_every_compose_variable():
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    documented = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (YAML says keys are unique;
    docker-compose and kubectl would silently keep the last)."""


def _strict_mapping(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise yaml.constructor.ConstructorError(None, None, f"keys given twice: {twice}",
                                                node.start_mark)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def settings_known(program):
    """The environment variables a program reads, as its --help lists them."""
    out = subprocess.run([str(adwtest.BIN_DIR / program), "--help"], capture_output=True,
                         text=True, timeout=30)
    names = set(re.findall(r"\benv ([A-Z][A-Z0-9_]+)", out.stdout + out.stderr))
    assert "DATABASE_URL" in names and "ADW_LOG_LEVEL" in names, out.stdout[:300]
    return names


def test_strict_yaml_refuses_a_key_given_twice():
    with pytest.raises(yaml.constructor.ConstructorError, match="keys given twice"):
        yaml.load("env:\n  A: 1\n  B: 2\n  A: 3\n", Loader=StrictLoader)


@pytest.mark.needs_bin("adw-ingest", "adw-gateway")
def test_deploy_files_set_only_settings_the_programs_read():
    """docker-compose.yml and deploy/kubernetes/adw.yaml: no key twice in a mapping, and every
    ADW_* or DATABASE_URL variable given to adw-ingest or adw-gateway is one it reads (a name
    it does not know would be ignored without a word)."""
    known = {p: settings_known(p) for p in ("adw-ingest", "adw-gateway")}
    given = []  # (file, program, variable names)
    compose = yaml.load((REPO / "docker-compose.yml").read_text(), Loader=StrictLoader)
    for name, svc in compose["services"].items():
        cmd = svc.get("command") or []
        program = cmd[0] if isinstance(cmd, list) and cmd else str(cmd).split(" ")[0]
        if program in known:
            given.append((f"docker-compose.yml {name}", program, set(svc.get("environment", {}))))
    docs = list(yaml.load_all((REPO / "deploy" / "kubernetes" / "adw.yaml").read_text(),
                              Loader=StrictLoader))
    for doc in docs:
        if doc.get("kind") != "Deployment":
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            program = c["command"][0]
            if program in known:
                given.append((f"adw.yaml {doc['metadata']['name']}", program,
                              {e["name"] for e in c.get("env", [])}))
    assert {p for _, p, _ in given} == set(known), given
    for where, program, names in given:
        ours = {n for n in names if n.startswith("ADW_") or n == "DATABASE_URL"}
        assert ours <= known[program], f"{where}: {program} reads no {sorted(ours - known[program])}"


def dockerfile_stages():
    stages, cur = [], None
    for line in (REPO / "deploy" / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            cur = {"from": line.split()[1], "text": ""}
            stages.append(cur)
        elif cur is not None:
            cur["text"] += line + "\n"
    return stages


def test_dockerfile_builds_on_debian12_and_runs_slim_as_non_root():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build, run = stages[0], stages[-1]
    assert build["from"].startswith("debian:bookworm")
    for pkg in ("libzmq3-dev", "libczmq-dev", "libwebsockets-dev", "libmsgpack-dev", "libpq-dev",
                "libjansson-dev", "cmake"):
        assert pkg in build["text"], pkg
    assert run["from"] == "debian:bookworm-slim"
    assert re.search(r"^USER (?!root)\w+", run["text"], re.M), "runtime must not run as root"
    assert "useradd" in run["text"]
    assert "-dev" not in run["text"], "the runtime image needs no -dev package"
    assert "gateway/web" in run["text"], "the gateway image carries the dashboard"


@pytest.mark.needs_bin("adw-ingest")
def test_dockerfile_runtime_has_every_library_the_programs_link():
    """Each DT_NEEDED library of each program must come from a package the runtime stage
    installs (or from the base image's libc)."""
    run_text = dockerfile_stages()[-1]["text"]
    base = {"libc6", "libgcc-s1", "libstdc++6"}
    for prog in ("adw-ingest", "adw-gateway", "adw-send", "adw-bench"):
        path = adwtest.BIN_DIR / prog
        if not path.exists():
            continue
        dyn = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
        for lib in re.findall(r"Shared library: \[(.+?)\]", dyn):
            if lib.startswith(("libasan", "libubsan")):
                continue  # sanitizer builds only
            loc = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
            m = re.search(rf"^\s+{re.escape(lib)} .*=> (\S+)$", loc, re.M)
            assert m, f"{prog}: {lib} not found"
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))],
                                   capture_output=True, text=True).stdout.split(":")[0]
            assert owner in base or re.search(rf"\b{re.escape(owner)}\b", run_text), \
                f"{prog} needs {lib} from {owner}, which the runtime stage does not install"


def test_haproxy_config_is_valid_for_compose_and_loopback(tmp_path):
    if not shutil.which("haproxy"):
        pytest.skip("haproxy not installed")
    out = subprocess.run(["haproxy", "-c", "-f", str(REPO / "deploy" / "haproxy.cfg")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    rendered = tmp_path / "haproxy.cfg"
    text = subprocess.run([str(REPO / "deploy" / "render-haproxy.sh"), "127.0.0.1:9", "1", "2"],
                          capture_output=True, text=True, check=True).stdout
    rendered.write_text(text)
    assert "server gateway1 127.0.0.1:1 check" in text and "gateway2 127.0.0.1:2" in text
    assert "resolvers" not in text
    out = subprocess.run(["haproxy", "-c", "-f", str(rendered)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


# ---- the topology, natively ----

N_CLIENTS = int(os.environ.get("ADW_TOPOLOGY_CLIENTS", "300"))


def fleet(url, n):
    """n clients through the load balancer, each reconnecting with since = the last id it
    holds (adwtest.ResumingFleet over one URL)."""
    return adwtest.ResumingFleet([url], [{}] * n, open_timeout=10, retry_s=0.2).start()


def publish(ingest, first_seq, count, rate):
    """Posts count events over ZeroMQ at about rate per second; returns the ids."""
    ids = []
    with ingest.zmq() as z:
        t0 = time.monotonic()
        for k in range(count):
            ev = {"type": "adw_event", "adw_id": "topo", "step": "build",
                  "event_type": "ToolUseBlock", "event_id": f"topo-{first_seq + k}",
                  "payload": {"seq": first_seq + k}}
            rep = z.submit(ev, timeout=20)
            assert rep["ok"], rep
            ids.extend(rep["ids"])
            delay = t0 + (k + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return ids


def check_exactly_once(fl, last):
    adwtest.wait_for(lambda: all(len(x) >= last for x in fl.ids), 60,
                     what=f"every client to reach id {last}")
    for i, got in enumerate(fl.ids):
        assert got == list(range(1, len(got) + 1)), f"client {i}: gap, duplicate or disorder"
        assert got[-1] == last, f"client {i} ends at {got[-1]}, expected {last}"


@pytest.fixture
def topology(db, make_ingest, make_gateway, tmp_path):
    if not shutil.which("haproxy"):
        pytest.skip("haproxy not installed")
    from conftest import require_bin
    require_bin("adw-ingest", "adw-gateway")
    ingest = make_ingest()
    gws = [make_gateway(ingest, ADW_GATEWAY_HEARTBEAT_S="5") for _ in range(3)]
    port = adwtest.free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(subprocess.run(
        [str(REPO / "deploy" / "render-haproxy.sh"), f"127.0.0.1:{port}"] +
        [str(g.http_port) for g in gws], capture_output=True, text=True, check=True).stdout)
    ha = adwtest.Proc(["haproxy", "-W", "-db", "-f", str(cfg)], name="haproxy").start()
    ha.wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=20)
    return ingest, gws, f"ws://127.0.0.1:{port}/ws/events", port


def test_topology_kill9_one_gateway_clients_resume_elsewhere(topology):
    ingest, gws, url, port = topology
    fl = fleet(url, N_CLIENTS)
    try:
        adwtest.wait_for(lambda: sum(1 for g in gws if g.alive()) == 3, 10)
        time.sleep(2)  # let the fleet connect
        ids = publish(ingest, 0, 200, 200)
        check_exactly_once(fl, ids[-1])
        gws[1].kill9()
        ids = publish(ingest, 200, 300, 150)
        check_exactly_once(fl, ids[-1])
        assert sum(fl.moves) > 0, "killing a gateway should have moved some clients"
    finally:
        fl.close()


def test_topology_rolling_restart_under_load(topology):
    ingest, gws, url, port = topology
    fl = fleet(url, min(N_CLIENTS, 100))
    try:
        time.sleep(2)
        done = []
        pub = threading.Thread(target=lambda: done.append(publish(ingest, 1000, 600, 100)))
        pub.start()
        for g in gws:
            g.signal(signal.SIGTERM)
            assert g.wait(15) == 0, "a gateway must exit 0 on SIGTERM"
            g.start_again().wait_ready(g.base_url + "/readyz", 20)
            time.sleep(0.5)
        pub.join(60)
        assert done, "publisher did not finish"
        check_exactly_once(fl, done[0][-1])
    finally:
        fl.close()
