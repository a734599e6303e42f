// One load client, three backends: the project (POST /api/events to adw-ingest, WebSocket
// clients on adw-gateway's /ws/events), NATS (core publishes acknowledged with a flush,
// subscribers on a wildcard subject) and Mosquitto (MQTT 3.1.1 publishes at QoS 1, acknowledged
// by the broker's PUBACK; subscribers on a wildcard topic at QoS 0). peers.py starts the servers
// and runs this script.
//
//   node client.mjs --backend adw --ingest http://127.0.0.1:P \
//        --gateway ws://127.0.0.1:G/ws/events --clients 100 --events 2000 [--rate 200] \
//        [--publishers 8] [--sub-procs 2] [--warmup 200]
//   node client.mjs --backend nats --nats nats://127.0.0.1:N --clients 100 --events 2000
//   node client.mjs --backend mqtt --mqtt mqtt://127.0.0.1:M --clients 100 --events 2000
//
// The main process runs the publishers; --sub-procs child processes (this script again, with
// --role sub) hold the subscribers. Publisher k sends events k, k+P, k+2P, ... one at a time,
// each waiting for its acknowledgement (project: the 200 after the commit; NATS: the PONG of a
// flush after the PUB; Mosquitto: the PUBACK of the PUBLISH); with --rate, event i is sent no
// earlier than i/rate seconds after the start. Each event carries its number and its send time
// (CLOCK_MONOTONIC, shared by the processes) in its payload; every subscriber marks each number
// it gets, so that a missing or duplicated delivery is counted. Prints one JSON line. Bounded:
// --timeout seconds in all.

import { fork } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const opt = {
  role: "main", backend: "adw", ingest: "", gateway: "", nats: "", mqtt: "", clients: 10,
  events: 100,
  rate: 0, publishers: 8, "sub-procs": 2, warmup: 0, timeout: 120, sources: "", offset: 0,
};
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, "");
  if (!(k in opt)) { console.error(`unknown option --${k}`); process.exit(64); }
  const v = argv[++i];
  opt[k] = typeof opt[k] === "number" ? Number(v) : v;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const SUBJECT = "adw.events";
const TOPIC = "adw/events";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An event as the project stores it: an adw_event with adw_id, step, event_type, summary and a
// payload; payload.seq and payload.t_us are the benchmark's marks.
function eventBody(seq, pub) {
  const file = `/src/peers/module_${seq % 50}.py`;
  return JSON.stringify({
    type: "adw_event", adw_id: `peers-${pub}`, step: "build", event_type: "ToolUseBlock",
    summary: `Write ${file}`,
    payload: { seq, t_us: nowUs(), tool_name: "Write", file_path: file, duration_ms: 45,
               input_tokens: 120, output_tokens: 30, cost_usd: 0.0012 },
  });
}

// The number after key in buf (a Buffer), or -1: the marks are read without parsing the JSON.
const SEQ = Buffer.from('"seq":');
const TUS = Buffer.from('"t_us":');
function readNum(buf, key) {
  const i = buf.indexOf(key);
  if (i < 0) return -1;
  let n = 0;
  for (let j = i + key.length; j < buf.length; j++) {
    const c = buf[j];
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}

function sourceAddr(i) {
  // --sources 127.0.0.2-127.0.0.9: client i binds to one of them (round robin).
  if (!opt.sources) return undefined;
  const [a, b] = opt.sources.split("-");
  const base = a.split(".").map(Number);
  const last = b ? Number(b.split(".")[3]) : base[3];
  const n = last - base[3] + 1;
  return `${base[0]}.${base[1]}.${base[2]}.${base[3] + (i % n)}`;
}

// ---------------------------------------------------------------------------------------------
// Subscribers (a child process: clients offset .. offset+clients-1)

async function subMain() {
  const n = opt.clients, events = opt.events;
  const got = Array.from({ length: n }, () => new Uint8Array(events));
  const counts = new Uint32Array(n);
  let deliveries = 0, dups = 0, foreign = 0, firstUs = 0, lastUs = 0;
  const lat = new Float64Array(n * events);
  let nlat = 0;
  // Per event: its first and its last receipt in this process (µs after its send).
  const first = new Float64Array(events).fill(Infinity);
  const last = new Float64Array(events).fill(-1);
  const total = n * events;
  let reported = false;
  const closers = [];

  function report() {
    if (reported) return;
    reported = true;
    let complete = 0;
    for (let c = 0; c < n; c++) if (counts[c] === events) complete++;
    const cpu = process.cpuUsage();
    process.send({ type: "stats", deliveries, dups, foreign, complete, firstUs, lastUs,
                   cpu_s: (cpu.user + cpu.system) / 1e6,
                   lat: Array.from(lat.subarray(0, nlat)),
                   first: Array.from(first, (v) => (v === Infinity ? -1 : v)),
                   last: Array.from(last) }, () => {
      for (const close of closers) { try { close(); } catch { /* closing anyway */ } }
      setTimeout(() => process.exit(0), 200);
    });
  }

  function onEvent(c, buf) {
    const seq = readNum(buf, SEQ);
    if (seq < 0 || seq >= events) { foreign++; return; }
    const t = nowUs();
    if (got[c][seq]) { dups++; return; }
    got[c][seq] = 1;
    counts[c]++;
    deliveries++;
    if (!firstUs) firstUs = t;
    lastUs = t;
    if (seq >= opt.warmup) {
      const d = t - readNum(buf, TUS);
      lat[nlat++] = d;
      if (d < first[seq]) first[seq] = d;
      if (d > last[seq]) last[seq] = d;
    }
    if (deliveries === total) report();
  }

  process.on("message", (m) => { if (m.type === "stop") report(); });

  const ready = [];
  if (opt.backend === "adw") {
    const { default: WebSocket } = await import("ws");
    const PING = Buffer.from('"type":"ping"');
    const open = (c) => new Promise((resolve, reject) => {
      const ws = new WebSocket(opt.gateway, { perMessageDeflate: false,
                                              localAddress: sourceAddr(opt.offset + c) });
      let hello = false;
      ws.on("message", (data) => {
        if (!hello) { hello = true; resolve(); return; } // {"type":"hello",...}: subscribed
        if (data.indexOf(SEQ) >= 0) onEvent(c, data);
        else if (data.indexOf(PING) >= 0) ws.send('{"action":"pong"}');
      });
      ws.on("error", (e) => { if (!hello) reject(e); });
      ws.on("close", () => { if (!hello) reject(new Error("closed before hello")); });
      closers.push(() => ws.terminate());
    });
    for (let c = 0; c < n; c += 50) { // at most 50 handshakes at a time
      const batch = [];
      for (let j = c; j < Math.min(n, c + 50); j++) batch.push(open(j));
      await Promise.all(batch);
    }
  } else if (opt.backend === "mqtt") {
    const { default: mqtt } = await import("mqtt");
    const open = async (c) => {
      const mc = await mqtt.connectAsync(opt.mqtt, {
        protocolVersion: 4, reconnectPeriod: 0, clean: true,
        clientId: `sub-${process.pid}-${opt.offset + c}` });
      mc.on("message", (topic, payload) => onEvent(c, payload));
      await mc.subscribeAsync(`${TOPIC}/#`, { qos: 0 }); // the broker holds it at its SUBACK
      closers.push(() => mc.end(true));
    };
    for (let c = 0; c < n; c += 50) {
      const batch = [];
      for (let j = c; j < Math.min(n, c + 50); j++) batch.push(open(j));
      await Promise.all(batch);
    }
  } else {
    const { connect } = await import("nats");
    const open = async (c) => {
      const nc = await connect({ servers: opt.nats, noEcho: true, reconnect: false,
                                 name: `sub-${opt.offset + c}` });
      nc.subscribe(`${SUBJECT}.>`, { callback: (err, msg) => {
        if (!err) onEvent(c, Buffer.from(msg.data.buffer, msg.data.byteOffset,
                                         msg.data.byteLength));
      } });
      await nc.flush(); // the server holds the subscription once its PONG is back
      closers.push(() => nc.close());
    };
    for (let c = 0; c < n; c += 50) {
      const batch = [];
      for (let j = c; j < Math.min(n, c + 50); j++) batch.push(open(j));
      await Promise.all(batch);
    }
  }
  process.send({ type: "ready" });
  setTimeout(report, opt.timeout * 1000); // bounded even if the parent goes away
}

// ---------------------------------------------------------------------------------------------
// Publishers (the main process)

async function adwPublisher(k, next, stats) {
  const u = new URL(opt.ingest);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (body) => new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: "/api/events",
                               method: "POST", agent,
                               headers: { "Content-Type": "application/json",
                                          "Content-Length": Buffer.byteLength(body) } },
    (res) => {
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () => resolve([res.statusCode, Buffer.concat(chunks).toString()]));
    });
    req.setNoDelay(true);
    req.on("error", reject);
    req.end(body);
  });
  for (let seq; (seq = await next(k)) >= 0;) {
    const t0 = nowUs();
    const [status, text] = await post(eventBody(seq, k));
    if (seq >= opt.warmup) stats.ack.push(nowUs() - t0);
    if (status === 200 && text.includes('"id":')) stats.acked++;
    else { stats.refused++; if (stats.refused < 4) console.error(`POST: ${status} ${text}`); }
    stats.lastAckUs = nowUs();
  }
  agent.destroy();
}

async function natsPublisher(k, next, stats) {
  const { connect } = await import("nats");
  const nc = await connect({ servers: opt.nats, reconnect: false, name: `pub-${k}` });
  const enc = new TextEncoder();
  for (let seq; (seq = await next(k)) >= 0;) {
    nc.publish(`${SUBJECT}.peers-${k}`, enc.encode(eventBody(seq, k)));
    const t0 = nowUs();
    await nc.flush(); // acknowledged: the server has taken the PUB when its PONG comes back
    if (seq >= opt.warmup) stats.ack.push(nowUs() - t0);
    stats.acked++;
    stats.lastAckUs = nowUs();
  }
  await nc.close();
}

async function mqttPublisher(k, next, stats) {
  const { default: mqtt } = await import("mqtt");
  const mc = await mqtt.connectAsync(opt.mqtt, { protocolVersion: 4, reconnectPeriod: 0,
                                                 clean: true, clientId: `pub-${process.pid}-${k}` });
  for (let seq; (seq = await next(k)) >= 0;) {
    const t0 = nowUs();
    // acknowledged: the broker has taken the PUBLISH (and queued it to its subscribers) when
    // its PUBACK comes back; nothing is persisted (persistence false)
    await mc.publishAsync(`${TOPIC}/peers-${k}`, eventBody(seq, k), { qos: 1 });
    if (seq >= opt.warmup) stats.ack.push(nowUs() - t0);
    stats.acked++;
    stats.lastAckUs = nowUs();
  }
  await mc.endAsync();
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function main() {
  const deadline = Date.now() + opt.timeout * 1000;
  const procs = Math.max(1, Math.min(opt["sub-procs"], opt.clients));
  const me = fileURLToPath(import.meta.url);
  const subs = [];
  for (let p = 0, off = 0; p < procs; p++) {
    const n = Math.floor(opt.clients / procs) + (p < opt.clients % procs ? 1 : 0);
    const args = [];
    for (const [k, v] of Object.entries(opt)) args.push(`--${k}`, String(v));
    const i = args.indexOf("--role"); args[i + 1] = "sub";
    const j = args.indexOf("--clients"); args[j + 1] = String(n);
    const o = args.indexOf("--offset"); args[o + 1] = String(off);
    off += n;
    const child = fork(me, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const s = { child, stats: null };
    s.ready = new Promise((resolve, reject) => {
      child.on("message", (m) => {
        if (m.type === "ready") resolve();
        if (m.type === "stats") { s.stats = m; s.done?.(); }
      });
      child.on("exit", (code) => { reject(new Error(`subscriber process exited ${code}`));
                                   s.done?.(); });
    });
    s.finished = new Promise((r) => { s.done = r; });
    subs.push(s);
  }
  const t0Connect = Date.now();
  await Promise.race([Promise.all(subs.map((s) => s.ready)),
                      sleep(Math.max(0, deadline - Date.now())).then(() => {
                        throw new Error("subscribers not connected in time"); })]);
  const connectS = (Date.now() - t0Connect) / 1000;

  // Events are handed out in order; with --rate, event i waits for its time.
  const stats = { acked: 0, refused: 0, lastAckUs: 0, ack: [] };
  let nextSeq = 0;
  const startUs = nowUs();
  const next = async () => {
    if (nextSeq >= opt.events || Date.now() > deadline) return -1;
    const seq = nextSeq++;
    if (opt.rate > 0) {
      const wait = (startUs + (seq * 1e6) / opt.rate - nowUs()) / 1000;
      if (wait > 0) await sleep(wait);
    }
    return seq;
  };
  const pub = { adw: adwPublisher, nats: natsPublisher, mqtt: mqttPublisher }[opt.backend];
  if (!pub) throw new Error(`unknown backend ${opt.backend}`);
  await Promise.all(Array.from({ length: opt.publishers }, (_, k) => pub(k, next, stats)));
  const pubS = (stats.lastAckUs - startUs) / 1e6;

  // Every subscriber process reports once it has every event, or when told to stop.
  await Promise.race([Promise.all(subs.map((s) => s.finished)),
                      sleep(Math.max(1000, deadline - Date.now()))]);
  for (const s of subs) if (!s.stats) s.child.send({ type: "stop" });
  await Promise.race([Promise.all(subs.map((s) => s.finished)), sleep(5000)]);
  for (const s of subs) s.child.kill("SIGKILL");

  let deliveries = 0, dups = 0, foreign = 0, complete = 0, lastUs = 0;
  const ms = (v) => (v === null ? null : Math.round(v) / 1000);
  const own = process.cpuUsage();
  let subCpu = 0;
  const lats = [];
  const firstOf = new Float64Array(opt.events).fill(Infinity);
  const lastOf = new Float64Array(opt.events).fill(-1);
  for (const s of subs) {
    if (!s.stats) continue;
    subCpu += s.stats.cpu_s;
    deliveries += s.stats.deliveries; dups += s.stats.dups; foreign += s.stats.foreign;
    complete += s.stats.complete; lastUs = Math.max(lastUs, s.stats.lastUs);
    for (const x of s.stats.lat) lats.push(x);
    s.stats.first.forEach((v, i) => { if (v >= 0 && v < firstOf[i]) firstOf[i] = v; });
    s.stats.last.forEach((v, i) => { if (v > lastOf[i]) lastOf[i] = v; });
  }
  // Where a delivery's time goes: the acknowledgement, the first receipt of an event and the
  // spread from its first receipt to its last (the fan-out).
  const firsts = [], spreads = [];
  for (let i = opt.warmup; i < opt.events; i++) {
    if (firstOf[i] === Infinity || lastOf[i] < 0) continue;
    firsts.push(firstOf[i]);
    spreads.push(lastOf[i] - firstOf[i]);
  }
  const pcts = (a) => {
    const v = Float64Array.from(a).sort();
    return { p50: ms(percentile(v, 0.5)), p99: ms(percentile(v, 0.99)) };
  };
  const sorted = Float64Array.from(lats).sort();
  const expected = opt.clients * opt.events;
  const result = {
    backend: opt.backend, clients: opt.clients, events: opt.events, rate: opt.rate,
    publishers: opt.publishers, sub_procs: procs, connect_s: connectS,
    acked: stats.acked, refused: stats.refused, publish_s: pubS,
    publishes_per_s: stats.acked / pubS,
    deliveries, expected_deliveries: expected, missing: expected - deliveries,
    duplicated: dups, foreign, clients_complete: complete,
    delivery_s: lastUs ? (lastUs - startUs) / 1e6 : null,
    deliveries_per_s: lastUs ? deliveries / ((lastUs - startUs) / 1e6) : null,
    latency_samples: sorted.length,
    cpu_s: { publishers: (own.user + own.system) / 1e6, subscribers: subCpu },
    latency_ms: { p50: ms(percentile(sorted, 0.5)), p99: ms(percentile(sorted, 0.99)),
                  p999: ms(percentile(sorted, 0.999)),
                  max: ms(sorted.length ? sorted[sorted.length - 1] : null) },
    ack_ms: pcts(stats.ack), first_receipt_ms: pcts(firsts), fanout_spread_ms: pcts(spreads),
  };
  console.log(JSON.stringify(result));
  process.exit(0);
}

if (opt.role === "sub") subMain().catch((e) => { console.error(`subscriber: ${e.message}`);
                                                 process.exit(1); });
else main().catch((e) => { console.error(`client: ${e.stack || e}`); process.exit(1); });
