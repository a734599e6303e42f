// Agents as they really arrive: --agents concurrent hook clients, each posting single Claude
// Code hook bodies to adw-ingest's POST /api/hooks at an agent's pace (its own rate, drawn
// between --min-rate and --max-rate events/s; the next event waits for the answer to the
// previous one, as a hook does), for --seconds. Node's built-ins only; agents.py starts the
// stack and runs this script.
//
//   node tests/bench/agents.mjs --mode close|keepalive|send|send-http --ingest http://127.0.0.1:P \
//        [--zmq tcp://127.0.0.1:Z] [--send build/bin/adw-send] [--agents 2000] [--seconds 20]
//
// close      a new TCP connection per event (Connection: close), as a hook process makes
// keepalive  one keep-alive connection per agent, as Claude Code's HTTP hooks may
// send        an adw-send --hook process per event (ZeroMQ, its default transport)
// send-http   the same over HTTP (--http)
// The agents are spread over --procs processes. Prints one JSON line: answers/s sustained, the
// time to the answer (p50, p99, max), refusals and errors. Bounded in time.

import { fork, spawn } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const opt = { role: "main", mode: "close", ingest: "", zmq: "", send: "", agents: 2000,
              seconds: 20, "min-rate": 1, "max-rate": 5, procs: 2, offset: 0, seed: 1 };
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, "");
  if (!(k in opt)) { console.error(`unknown option --${k}`); process.exit(64); }
  const v = argv[++i];
  opt[k] = typeof opt[k] === "number" ? Number(v) : v;
}
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A deterministic pseudo-random sequence (mulberry32), so that runs offer the same load.
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A PreToolUse / PostToolUse hook body as Claude Code sends it.
function hookBody(agent, n) {
  const session = `5f1c${String(agent).padStart(4, "0")}-9a7e-4c1b-8f3d-2e6a1b0c9d47`;
  const file = `/repo/src/module_${n % 40}.py`;
  const post = n % 2 === 1;
  const body = {
    session_id: session,
    transcript_path: `/home/dev/.claude/projects/-repo/${session}.jsonl`,
    cwd: "/repo", permission_mode: "default",
    hook_event_name: post ? "PostToolUse" : "PreToolUse",
    tool_name: "Edit",
    tool_input: { file_path: file, old_string: "    return None\n",
                  new_string: "    return self._cache.get(key)\n" },
    tool_use_id: `toolu_01${String(agent * 100000 + n).padStart(22, "0")}`,
  };
  if (post) body.tool_response = { filePath: file, success: true };
  return JSON.stringify(body);
}

async function agentsMain() {
  const lat = [];
  let ok = 0, refused = 0, errors = 0, lastErr = "";
  const u = new URL(opt.ingest);
  const end = nowMs() + opt.seconds * 1000;
  const rand = rng(opt.seed + opt.offset);

  const postOnce = (agent, path, body, keepAgent) => new Promise((resolve) => {
    const req = http.request({
      host: u.hostname, port: u.port, path, method: "POST",
      agent: keepAgent || false,
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body),
                 ...(keepAgent ? {} : { Connection: "close" }) },
    }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", (e) => { lastErr = e.message; resolve(-1); });
    req.setTimeout(30000, () => req.destroy(new Error("timeout")));
    req.end(body);
  });

  const sendOnce = (agent, body) => new Promise((resolve) => {
    const args = ["--hook", "--adw-id", `agent-${agent}`, "--step", "build", "--strict",
                  "--spool", "off", "--timeout-ms", "30000"];
    if (opt.mode === "send-http") args.push("--http", opt.ingest);
    else args.push("--zmq", opt.zmq);
    const p = spawn(opt.send, args, { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    p.on("error", (e) => { lastErr = e.message; resolve(-1); });
    p.on("close", (code) => {
      if (code) lastErr = err.trim().slice(-200);
      resolve(code ? 500 : 200);
    });
    p.stdin.end(body);
  });

  async function agent(a) {
    const rate = opt["min-rate"] + rand() * (opt["max-rate"] - opt["min-rate"]);
    const gap = 1000 / rate;
    const keepAgent = opt.mode === "keepalive" ? new http.Agent({ keepAlive: true, maxSockets: 1 })
                                               : null;
    const path = `/api/hooks?adw_id=agent-${a}&step=build`;
    let due = nowMs() + rand() * gap; // agents start out of step
    for (let n = 0; ; n++) {
      const now = nowMs();
      if (due > now) await sleep(due - now);
      if (nowMs() >= end) break;
      const t = nowMs();
      const st = opt.mode.startsWith("send") ? await sendOnce(a, hookBody(a, n))
                                             : await postOnce(a, path, hookBody(a, n), keepAgent);
      const took = nowMs() - t;
      if (st === 200) { ok++; lat.push(took); }
      else if (st > 0) refused++;
      else errors++;
      due += gap;
    }
    keepAgent?.destroy();
  }
  const started = nowMs();
  await Promise.all(Array.from({ length: opt.agents }, (_, i) => agent(opt.offset + i)));
  const cpu = process.cpuUsage();
  process.send({ ok, refused, errors, lastErr, lat, elapsed_s: (nowMs() - started) / 1000,
                 cpu_s: (cpu.user + cpu.system) / 1e6 },
               () => process.exit(0));
}

async function main() {
  const me = fileURLToPath(import.meta.url);
  const procs = Math.max(1, Math.min(opt.procs, opt.agents));
  const parts = [];
  for (let p = 0, off = 0; p < procs; p++) {
    const n = Math.floor(opt.agents / procs) + (p < opt.agents % procs ? 1 : 0);
    const args = [];
    for (const [k, v] of Object.entries(opt)) args.push(`--${k}`, String(v));
    args[args.indexOf("--role") + 1] = "agents";
    args[args.indexOf("--agents") + 1] = String(n);
    args[args.indexOf("--offset") + 1] = String(off);
    off += n;
    const child = fork(me, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    parts.push(new Promise((resolve) => {
      let got = null;
      child.on("message", (m) => { got = m; });
      child.on("exit", () => resolve(got));
    }));
  }
  const killer = setTimeout(() => process.exit(2), (opt.seconds + 90) * 1000);
  const res = await Promise.all(parts);
  clearTimeout(killer);
  let ok = 0, refused = 0, errors = 0, elapsed = 0, lastErr = "", cpu = 0;
  const lat = [];
  for (const r of res) {
    if (!r) { errors++; continue; }
    ok += r.ok; refused += r.refused; errors += r.errors; elapsed = Math.max(elapsed, r.elapsed_s);
    if (r.lastErr) lastErr = r.lastErr;
    cpu += r.cpu_s;
    for (const x of r.lat) lat.push(x);
  }
  const s = Float64Array.from(lat).sort();
  const pct = (p) => {
    if (!s.length) return null;
    return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 100) / 100;
  };
  const offered = opt.agents * (opt["min-rate"] + opt["max-rate"]) / 2;
  console.log(JSON.stringify({
    mode: opt.mode, agents: opt.agents, seconds: opt.seconds, offered_per_s: offered,
    answered: ok, refused, errors, last_error: lastErr || undefined,
    answers_per_s: ok / elapsed, elapsed_s: elapsed, client_cpu_s: cpu,
    answer_ms: { p50: pct(0.5), p99: pct(0.99), p999: pct(0.999),
                 max: s.length ? s[s.length - 1] : null },
  }));
}

if (opt.role === "agents") agentsMain().catch((e) => { console.error(e); process.exit(1); });
else main().catch((e) => { console.error(e); process.exit(1); });
