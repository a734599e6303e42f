// Approvals: a tool call that ingest holds until a person allows or denies it (proto/websocket.md,
// "Approvals"). The run view shows its pending approvals at the top, each with the tool, its
// input, the rule that matched and a countdown to expires_at, and Allow / Deny buttons when the
// page holds a decide token. The token is entered once, kept in localStorage for this origin
// and sent only in the Authorization header of POST /api/approvals/{id} (never in a URL or a
// cookie). The outcome shows live, from the approval_decided and approval_expired events.

import {h, replace, setText} from './dom.js';
import {icon} from './icons.js';
import {fmtDuration, parseTs} from './fmt.js';

const STORE_KEY = 'adw.decideToken';
const LIST_LIMIT = 100;

// The decide token kept for this origin ('' when none).
export const decideToken = {
  get() {
    try {
      return localStorage.getItem(STORE_KEY) || '';
    } catch {
      return '';
    }
  },
  set(token) {
    try {
      if (token) localStorage.setItem(STORE_KEY, token);
      else localStorage.removeItem(STORE_KEY);
    } catch {
      // storage refused (private mode): the token lasts as long as the page
    }
    memo = token || '';
  },
};
let memo = '';

// The approval event an event is, by name, or null.
export function approvalEvent(ev) {
  if (!ev || ev.type !== 'system') return null;
  const n = ev.event;
  return n === 'approval_requested' || n === 'approval_decided' || n === 'approval_expired'
    ? n
    : null;
}

// Keeps run.pending_approvals (the run list's flag) current with a live event.
export function noteApprovalInRun(run, ev) {
  const kind = approvalEvent(ev);
  if (!kind) return;
  const n = Number(run.pending_approvals) || 0;
  run.pending_approvals = kind === 'approval_requested' ? n + 1 : Math.max(0, n - 1);
}

// The badge the run list shows for a run with pending approvals, or null.
export function pendingBadge(count) {
  const n = Number(count) || 0;
  if (n <= 0) return null;
  return h(
    'span',
    {
      class: 'badge status-approval',
      title: 'A tool call waits for a decision',
      dataset: {pendingApprovals: String(n)},
    },
    icon('approval'),
    n === 1 ? 'approval' : `${n} approvals`,
  );
}

// The tool input as a person reads it: a Bash command as is, else compact JSON.
function inputText(input) {
  if (input && typeof input === 'object') {
    if (typeof input.command === 'string') return input.command;
    if (typeof input.file_path === 'string' && Object.keys(input).length === 1)
      return input.file_path;
    return JSON.stringify(input, null, 2);
  }
  return input === undefined || input === null ? '' : String(input);
}

function outcomeText(o) {
  const waited = Number.isFinite(o.waited_ms) ? ` after ${fmtDuration(o.waited_ms)}` : '';
  if (o.status === 'expired') return `Expired${waited}: ${o.reason || 'no decision'}`;
  const verb = o.status === 'allowed' ? 'Allowed' : 'Denied';
  const by = o.decided_by ? ` by ${o.decided_by}` : '';
  const why = o.reason ? ` (${o.reason})` : '';
  return `${verb}${by}${waited}${why}`;
}

export class ApprovalPanel {
  // ctx: {api}; runId: the run whose approvals these are.
  constructor(ctx, runId) {
    this.ctx = ctx;
    this.runId = runId;
    this.items = new Map(); // approval_id -> {a, el, parts, outcome}
    this.destroyed = false;
    if (!memo) memo = decideToken.get();
    this.listEl = h('div', {class: 'approval-list'});
    this.tokenEl = h('div', {class: 'approval-token'});
    this.el = h(
      'section',
      {class: 'approvals', hidden: true, 'aria-label': 'Tool calls waiting for a decision'},
      this.listEl,
      this.tokenEl,
    );
    this.renderToken();
    this.timer = setInterval(() => this.tick(), 1000);
    this.load();
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.timer);
    if (this.abort) this.abort.abort();
  }

  // GET /api/approvals for this run (every status, newest first): adds the pending ones and
  // settles cards whose approval was decided meanwhile.
  async load() {
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    let rows;
    try {
      const body = await this.ctx.api.get(
        '/api/approvals',
        {adw_id: this.runId, status: 'all', limit: LIST_LIMIT},
        this.abort.signal,
      );
      rows = Array.isArray(body && body.approvals) ? body.approvals : [];
    } catch {
      return; // the events still bring what is new
    }
    if (this.destroyed) return;
    for (const a of rows.slice().reverse()) {
      if (!a || typeof a.approval_id !== 'string') continue;
      if (a.status === 'pending') this.add(a);
      else if (this.items.has(a.approval_id)) this.settle(a.approval_id, a);
    }
    this.render();
  }

  // The run's pending count from REST (GET /api/adws/{id}): reload when it disagrees.
  syncCount(count) {
    const n = Number(count);
    if (!Number.isFinite(n)) return;
    if (n !== this.pendingCount()) this.load();
  }

  pendingCount() {
    let n = 0;
    for (const it of this.items.values()) if (!it.outcome) n += 1;
    return n;
  }

  // An event of the run: live approval_requested adds a card; an outcome settles one.
  onEvent(ev, live) {
    const kind = approvalEvent(ev);
    if (!kind) return;
    const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
    const id = p.approval_id;
    if (typeof id !== 'string') return;
    if (kind === 'approval_requested') {
      if (!live || this.items.has(id)) return;
      this.add({
        approval_id: id,
        adw_id: ev.adw_id,
        step: ev.step,
        tool_name: p.tool_name,
        tool_input: p.tool_input,
        summary: ev.summary,
        rule: p.rule,
        expires_at: p.expires_at,
        status: 'pending',
      });
    } else if (this.items.has(id)) {
      this.settle(id, {
        status:
          kind === 'approval_expired' ? 'expired' : p.decision === 'allow' ? 'allowed' : 'denied',
        decided_by: p.decided_by,
        reason: p.reason,
        waited_ms: p.waited_ms,
      });
    }
    this.render();
  }

  add(a) {
    if (this.items.has(a.approval_id)) return;
    const parts = {
      label: h('strong', {dataset: {field: 'label'}}, 'Waiting for a decision: '),
      countdown: h('span', {class: 'approval-countdown', dataset: {field: 'countdown'}}),
      actions: h('div', {class: 'approval-actions'}),
      outcome: h('p', {class: 'approval-outcome', role: 'status', hidden: true}),
      error: h('p', {class: 'approval-error', role: 'alert', hidden: true}),
      reason: h('input', {
        type: 'text',
        class: 'approval-reason',
        maxlength: '1000',
        placeholder: 'Reason (optional)',
        'aria-label': 'Reason for the decision (optional)',
      }),
    };
    const el = h(
      'article',
      {class: 'approval', dataset: {approvalId: a.approval_id, state: 'pending'}},
      h(
        'div',
        {class: 'approval-head'},
        icon('approval'),
        parts.label,
        h('span', {class: 'approval-tool', dataset: {field: 'tool'}}, a.tool_name || 'tool'),
        a.step ? h('span', {class: 'muted'}, ` in ${a.step}`) : null,
        parts.countdown,
      ),
      h('pre', {class: 'approval-input', dataset: {field: 'input'}}, inputText(a.tool_input)),
      h(
        'p',
        {class: 'approval-rule muted'},
        'Rule: ',
        h('span', {dataset: {field: 'rule'}}, a.rule || '–'),
      ),
      parts.actions,
      parts.error,
      parts.outcome,
    );
    const it = {a, el, parts, outcome: null, expires: parseTs(a.expires_at)};
    this.items.set(a.approval_id, it);
    this.listEl.prepend(el);
    this.renderActions(it);
    this.tickOne(it, Date.now());
  }

  settle(id, o) {
    const it = this.items.get(id);
    if (!it || it.outcome) return;
    it.outcome = o;
    it.el.dataset.state = o.status;
    const label = {allowed: 'Allowed: ', denied: 'Denied: ', expired: 'Expired: '}[o.status];
    setText(it.parts.label, label || 'Decided: ');
    it.parts.outcome.hidden = false;
    setText(it.parts.outcome, outcomeText(o));
    it.parts.actions.replaceChildren();
    it.parts.error.hidden = true;
    setText(it.parts.countdown, '');
  }

  renderActions(it) {
    const box = it.parts.actions;
    if (it.outcome) {
      box.replaceChildren();
      return;
    }
    if (!memo) {
      replace(
        box,
        h(
          'p',
          {class: 'approval-note muted'},
          'To allow or deny from here, enter a decide token (ADW_GATEWAY_DECIDE_TOKENS) below.',
        ),
      );
      return;
    }
    const btn = (decision, label, cls) =>
      h(
        'button',
        {
          type: 'button',
          class: `btn ${cls}`,
          dataset: {decision},
          on: {click: () => this.decide(it, decision)},
        },
        icon(decision === 'allow' ? 'completed' : 'failed'),
        label,
      );
    replace(
      box,
      btn('allow', 'Allow', 'btn-allow'),
      btn('deny', 'Deny', 'btn-deny'),
      it.parts.reason,
    );
  }

  async decide(it, decision) {
    const id = it.a.approval_id;
    for (const b of it.parts.actions.querySelectorAll('button')) b.disabled = true;
    it.parts.error.hidden = true;
    let res, body;
    try {
      const reason = it.parts.reason.value.trim();
      res = await fetch(`/api/approvals/${encodeURIComponent(id)}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          Authorization: `Bearer ${memo}`,
        },
        body: JSON.stringify(reason ? {decision, reason} : {decision}),
        cache: 'no-store',
        credentials: 'omit',
      });
      body = await res.json().catch(() => null);
    } catch (e) {
      this.fail(it, `The decision was not sent: ${e.message}`);
      return;
    }
    if (this.destroyed) return;
    if (res.ok) {
      // The approval_decided event settles the card; until then, say what was sent.
      if (!it.outcome) {
        it.parts.outcome.hidden = false;
        setText(it.parts.outcome, decision === 'allow' ? 'Allowing…' : 'Denying…');
      }
      return;
    }
    const why = body && typeof body.error === 'string' ? body.error : res.statusText;
    if (res.status === 409 || res.status === 404) {
      this.fail(it, `${res.status}: ${why}`);
      this.load();
      return;
    }
    if (res.status === 401) this.fail(it, `The decide token was refused (401): ${why}`);
    else this.fail(it, `${res.status}: ${why}`);
  }

  fail(it, msg) {
    it.parts.error.hidden = false;
    setText(it.parts.error, msg);
    for (const b of it.parts.actions.querySelectorAll('button')) b.disabled = false;
  }

  renderToken() {
    if (memo) {
      replace(
        this.tokenEl,
        h('span', {class: 'muted'}, 'This browser holds a decide token. '),
        h(
          'button',
          {
            type: 'button',
            class: 'link approval-forget',
            on: {
              click: () => {
                decideToken.set('');
                this.renderToken();
                for (const it of this.items.values()) this.renderActions(it);
              },
            },
          },
          'Forget it',
        ),
      );
      return;
    }
    const input = h('input', {
      type: 'password',
      class: 'approval-token-input',
      autocomplete: 'off',
      placeholder: 'Decide token',
      'aria-label': 'Decide token',
    });
    const form = h(
      'form',
      {
        class: 'approval-token-form',
        on: {
          submit: (e) => {
            e.preventDefault();
            const t = input.value.trim();
            if (!t) return;
            decideToken.set(t);
            this.renderToken();
            for (const it of this.items.values()) this.renderActions(it);
          },
        },
      },
      input,
      h('button', {type: 'submit', class: 'btn btn-small'}, 'Use token'),
    );
    replace(this.tokenEl, form);
  }

  tickOne(it, now) {
    if (it.outcome) return;
    if (!Number.isFinite(it.expires)) {
      setText(it.parts.countdown, '');
      return;
    }
    const left = it.expires - now;
    setText(
      it.parts.countdown,
      left > 0 ? `${fmtCountdown(left)} left` : 'time is up: the rule decides',
    );
    it.parts.countdown.dataset.secondsLeft = String(Math.max(0, Math.ceil(left / 1000)));
  }

  tick() {
    const now = Date.now();
    for (const it of this.items.values()) this.tickOne(it, now);
  }

  render() {
    this.el.hidden = this.items.size === 0;
    this.el.dataset.pending = String(this.pendingCount());
    this.tokenEl.hidden = this.pendingCount() === 0;
  }
}

function fmtCountdown(ms) {
  const s = Math.ceil(ms / 1000);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
