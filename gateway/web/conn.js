// The one WebSocket to /ws/events (proto/websocket.md), kept open for the page's lifetime.
//
// - Reconnects with exponential backoff: 1 s, 2 s, 4 s ... 30 s, 30 s ..., never giving up;
//   back to 1 s once a connection says hello. `online` events and retryNow() try at once.
// - A view owns the subscription (subscribe(sub)). After every hello the connection sends
//   {"action":"subscribe","filters":sub.filters,"since":sub.since()} when the view gives a
//   since, so a view that keeps the last id it holds resumes with nothing lost.
// - Events reach sub.onEvent only after the server acknowledged the latest subscribe
//   ("subscribed"): what arrives before belongs to an older filter and is dropped.
// - Answers server pings; a connection silent for 2.5 heartbeats is taken as dead.
//
// State changes are dispatched as 'state' events: detail {state, retryAt, attempt, reason}
// with state one of 'connecting' (first try), 'live', 'reconnecting' (retryAt: when the next
// try starts, or null while trying), 'offline' (the browser reports no network).
// An 'epoch' event says the database changed (ids started over): views must reload. An
// 'incomplete' event says a resume came back incomplete (older events were dropped): the same.

export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 30000;

export class Connection extends EventTarget {
  // url: ws(s)://host/ws/events with ?token= when the page has one.
  constructor(url, {minDelay = BACKOFF_MIN_MS, maxDelay = BACKOFF_MAX_MS} = {}) {
    super();
    this.url = url;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.ws = null;
    this.state = 'connecting';
    this.attempt = 0; // failed tries since the last hello
    this.retryAt = null;
    this.retryTimer = null;
    this.everLive = false;
    this.hello = null;
    this.epoch = null;
    this.sub = null;
    this.sent = 0; // subscribes sent on this socket
    this.acked = 0; // of those, acknowledged
    this.lastRx = 0;
    this.reason = '';
    this.stats = {connects: 0, events: 0, dropped: 0};
    this.watchdog = setInterval(() => this.checkAlive(), 5000);
    window.addEventListener('online', () => {
      if (!this.ws) this.retryNow();
      else this.emitState();
    });
    window.addEventListener('offline', () => this.emitState());
  }

  start() {
    if (!this.ws && !this.retryTimer) this.open();
  }

  // sub: {filters, since() -> number|null, onEvent(ev), onSubscribed({reconnect}),
  // onReplayed(msg)}, or null to take nothing until the next subscribe (events are dropped).
  subscribe(sub) {
    this.sub = sub;
    if (sub && this.ws && this.hello) this.sendSubscribe(false);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  // Cancels the wait and tries now.
  retryNow() {
    if (this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  open() {
    this.retryAt = null;
    this.setState(this.everLive ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.reason = String(e && e.message);
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.hello = null;
    this.sent = 0;
    this.acked = 0;
    this.lastRx = Date.now();
    ws.onmessage = (m) => {
      if (this.ws === ws) this.onMessage(m.data);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.reason = e.reason ? `${e.code} ${e.reason}` : `closed (${e.code})`;
      this.dropSocket();
      this.scheduleRetry();
    };
    ws.onerror = () => {
      // A close event follows; nothing to do here.
    };
  }

  dropSocket() {
    const ws = this.ws;
    this.ws = null;
    this.hello = null;
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try {
          ws.close(4000, 'client gave up');
        } catch {
          // already closing
        }
      }
    }
  }

  scheduleRetry() {
    const delay = Math.min(this.minDelay * 2 ** this.attempt, this.maxDelay);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
    this.setState('reconnecting');
  }

  checkAlive() {
    if (!this.ws || !this.hello) return;
    const hb = Number(this.hello.heartbeat_s) > 0 ? Number(this.hello.heartbeat_s) : 30;
    if (Date.now() - this.lastRx > hb * 2500) {
      this.reason = 'no heartbeat';
      this.dropSocket();
      this.scheduleRetry();
    }
  }

  onMessage(data) {
    this.lastRx = Date.now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (typeof msg.id === 'number' && typeof msg.adw_id === 'string') {
      this.stats.events += 1;
      if (this.sub && this.acked === this.sent && this.acked > 0) this.sub.onEvent(msg);
      else this.stats.dropped += 1;
      return;
    }
    switch (msg.type) {
      case 'hello': {
        const reconnect = this.everLive;
        this.hello = msg;
        this.attempt = 0;
        this.everLive = true;
        this.stats.connects += 1;
        const epochChanged =
          this.epoch !== null && msg.epoch !== undefined && msg.epoch !== this.epoch;
        if (msg.epoch !== undefined) this.epoch = msg.epoch;
        this.setState('live');
        if (epochChanged) this.dispatchEvent(new CustomEvent('epoch', {detail: msg}));
        else if (this.sub) this.sendSubscribe(reconnect);
        break;
      }
      case 'subscribed':
        this.acked += 1;
        if (this.acked === this.sent && this.sub && this.sub.onSubscribed)
          this.sub.onSubscribed({reconnect: this.pendingReconnect, msg});
        break;
      case 'replayed':
        if (this.acked !== this.sent || !this.sub) break;
        if (this.sub.onReplayed) this.sub.onReplayed(msg);
        // Events after `since` were dropped by the retention: views reload from what is kept.
        if (msg.complete === false) this.dispatchEvent(new CustomEvent('incomplete', {detail: msg}));
        break;
      case 'ping':
        this.send({action: 'pong'});
        break;
      case 'error':
        console.warn('gateway:', msg.error);
        if (this.acked < this.sent) this.acked += 1; // a refused subscribe: keep the old gate
        break;
      default:
        break;
    }
  }

  sendSubscribe(reconnect) {
    const sub = this.sub;
    const msg = {action: 'subscribe', filters: sub.filters || {}};
    const since = sub.since ? sub.since({reconnect}) : null;
    if (Number.isSafeInteger(since) && since >= 0) msg.since = since;
    this.pendingReconnect = reconnect;
    if (this.send(msg)) this.sent += 1;
  }

  setState(state) {
    this.state = state;
    this.emitState();
  }

  emitState() {
    const offline = navigator.onLine === false && this.state !== 'live';
    this.dispatchEvent(
      new CustomEvent('state', {
        detail: {
          state: offline ? 'offline' : this.state,
          retryAt: this.retryAt,
          attempt: this.attempt,
          reason: this.reason,
        },
      }),
    );
  }
}
