"""What the benchmarks read of processes and servers: CPU seconds from /proc, the machine's busy
share from /proc/stat, and ingest's commits from its /metrics. Shared by tests/bench/agents.py and
tests/bench/peers/peers.py."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
import adwtest  # noqa: E402


def cpu_s(pid):
    """User + system CPU seconds of pid and its reaped children (from /proc), or None."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def pg_pids(pg):
    """The cluster's postmaster and every process it runs now."""
    try:
        pm = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    out = [pm]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pm:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def pg_tree_cpu(pg):
    """CPU seconds of the cluster's postmaster and every backend it runs now."""
    pids = pg_pids(pg)
    return sum(cpu_s(p) or 0.0 for p in pids) if pids else None


def pin(pids, cpus):
    """Binds every thread of each process in pids to cpus (a set of CPU numbers); threads and
    processes they start later inherit it."""
    for pid in pids:
        try:
            tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


def machine_busy():
    """(busy, total) jiffies of every CPU so far, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)


def ingest_commits(ingest):
    """From ingest's /metrics: commits, events per commit, and ms per commit (the writer's)."""
    try:
        _, _, text = adwtest.http_get(ingest.base_url + "/metrics")
    except OSError:
        return None
    m = {}
    for line in text.splitlines():
        for k in ("adw_ingest_batches_total", "adw_ingest_batch_size_sum",
                  "adw_ingest_commit_seconds_sum"):
            if line.startswith(k + " ") or line.startswith(k + "{"):
                m[k] = m.get(k, 0.0) + float(line.rsplit(" ", 1)[1])
    n = m.get("adw_ingest_batches_total")
    if not n:
        return None
    return {"commits": int(n),
            "events_per_commit": round(m.get("adw_ingest_batch_size_sum", 0) / n, 2),
            "ms_per_commit": round(m.get("adw_ingest_commit_seconds_sum", 0) * 1000 / n, 3)}
