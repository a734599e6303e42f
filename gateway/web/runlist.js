// The run list: every run with its status, current step, cost, tokens, event count and age,
// most recently active first. Loaded from GET /api/adws, then kept current by live events
// (subscription without a filter); reloaded after every (re)subscribe so nothing is missed.

import {h, replace, setText} from './dom.js';
import {icon} from './icons.js';
import {applyEventToRun, emptyRun, statusLook} from './events.js';
import {fmtAge, fmtCompact, fmtCost, fmtDateTime, fmtInt, parseTs} from './fmt.js';
import {formatRoute} from './route.js';
import {noteApprovalInRun, pendingBadge} from './approvals.js';

const MAX_ROWS = 500;
const STATUSES = ['', 'running', 'completed', 'failed'];

export class RunListView {
  // ctx: {api, conn, navigate(route, {replace})}
  constructor(root, ctx, route) {
    this.root = root;
    this.ctx = ctx;
    this.status = route.status || '';
    this.rows = new Map(); // adw_id -> {run, tr, cells}
    this.loading = false;
    this.loaded = false;
    this.buffer = [];
    this.gen = 0;
    this.orderDirty = false;
    this.dirtyRows = new Set();
    this.raf = 0;
    this.build();
    this.ageTimer = setInterval(() => this.renderAges(), 1000);
    ctx.conn.subscribe({
      filters: {},
      since: () => null,
      onEvent: (ev) => this.onEvent(ev),
      onSubscribed: () => this.load(),
    });
    this.load();
  }

  destroy() {
    this.gen += 1;
    clearInterval(this.ageTimer);
    cancelAnimationFrame(this.raf);
    if (this.abort) this.abort.abort();
  }

  // The route changed but still names the list.
  update(route) {
    if ((route.status || '') !== this.status) {
      this.status = route.status || '';
      this.select.value = this.status;
      this.load();
    }
  }

  build() {
    this.select = h('select', {
      id: 'status-filter',
      on: {
        change: () => {
          this.ctx.navigate({view: 'list', status: this.select.value}, {replace: true});
        },
      },
    });
    for (const s of STATUSES) this.select.append(h('option', {value: s}, s || 'all'));
    this.select.value = this.status;
    this.countEl = h('span', {class: 'muted', role: 'status'});
    this.errorEl = h('p', {class: 'banner banner-error', hidden: true, role: 'alert'});
    this.tbody = h('tbody');
    this.emptyEl = h(
      'div',
      {class: 'empty', hidden: true},
      h('p', null, 'No runs yet. Send an event and it shows up here at once:'),
      h(
        'pre',
        {class: 'code'},
        "curl -X POST http://127.0.0.1:8000/api/events -H 'Content-Type: application/json' \\\n" +
          '  -d \'{"type":"adw_event","adw_id":"demo1","step":"plan","event_type":"TextBlock","summary":"hello"}\'',
      ),
    );
    const th = (text, cls) => h('th', {scope: 'col', class: cls}, text);
    this.table = h(
      'table',
      {class: 'runs', 'aria-label': 'Runs, most recently active first'},
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          th('Status'),
          th('Run'),
          th('Current step'),
          th('Cost', 'num'),
          th('Tokens', 'num'),
          th('Events', 'num'),
          th('Started', 'col-started'),
          th('Last active'),
        ),
      ),
      this.tbody,
    );
    replace(
      this.root,
      h(
        'section',
        {class: 'page runs-page', 'aria-labelledby': 'runs-title'},
        h(
          'div',
          {class: 'page-head'},
          h('h1', {id: 'runs-title'}, 'Runs'),
          h(
            'div',
            {class: 'page-tools'},
            h('label', {for: 'status-filter'}, 'Status'),
            this.select,
            this.countEl,
          ),
        ),
        this.errorEl,
        h('div', {class: 'table-wrap'}, this.table),
        this.emptyEl,
      ),
    );
    this.tbody.addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-run-id]');
      if (!tr || e.target.closest('a')) return;
      this.ctx.navigate({
        view: 'run',
        runId: tr.dataset.runId,
        filters: {steps: [], event_types: [], types: []},
      });
    });
  }

  async load() {
    const gen = ++this.gen;
    this.loading = true;
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    let runs;
    try {
      runs = await this.ctx.api.runs({status: this.status || undefined}, this.abort.signal);
    } catch (e) {
      if (gen !== this.gen || e.name === 'AbortError') return;
      this.loading = false;
      this.errorEl.hidden = false;
      this.errorEl.textContent = `Could not load the runs: ${e.message}`;
      this.flushBuffer();
      return;
    }
    if (gen !== this.gen) return;
    this.errorEl.hidden = true;
    this.loading = false;
    this.loaded = true;
    const keep = new Set();
    for (const run of runs) {
      if (!run || typeof run.adw_id !== 'string') continue;
      keep.add(run.adw_id);
      const row = this.rows.get(run.adw_id);
      // A live event may already have moved the row past this answer.
      if (row && (row.run.last_id || 0) > (run.last_id || 0)) continue;
      this.setRun(run);
    }
    for (const [id, row] of this.rows) {
      if (!keep.has(id) && !this.matches(row.run)) this.removeRow(id);
    }
    this.flushBuffer();
    this.scheduleOrder();
  }

  flushBuffer() {
    const buf = this.buffer;
    this.buffer = [];
    for (const ev of buf) this.onEvent(ev);
  }

  matches(run) {
    return !this.status || run.status === this.status;
  }

  onEvent(ev) {
    if (this.loading) {
      if (this.buffer.length < 100000) this.buffer.push(ev);
      return;
    }
    const row = this.rows.get(ev.adw_id);
    const run = row ? row.run : emptyRun(ev.adw_id);
    if ((run.last_id || 0) >= ev.id) return; // already counted
    applyEventToRun(run, ev);
    noteApprovalInRun(run, ev);
    if (!this.matches(run)) {
      if (row) this.removeRow(ev.adw_id);
      return;
    }
    if (row)
      this.dirtyRows.add(row); // drawn with the next frame
    else this.setRun(run);
    this.scheduleOrder();
  }

  setRun(run) {
    let row = this.rows.get(run.adw_id);
    if (!row) {
      const link = h(
        'a',
        {href: formatRoute({view: 'run', runId: run.adw_id, filters: {}})},
        run.adw_id,
      );
      const cells = {
        status: h('td', {class: 'c-status'}),
        id: h('td', {class: 'c-id'}, link),
        step: h('td', {class: 'c-step'}),
        cost: h('td', {class: 'num c-cost'}),
        tokens: h('td', {class: 'num c-tokens'}),
        events: h('td', {class: 'num c-events'}),
        started: h('td', {class: 'c-started col-started'}),
        age: h('td', {class: 'c-age'}),
      };
      const tr = h('tr', {dataset: {runId: run.adw_id}}, Object.values(cells));
      row = {run, tr, cells};
      this.rows.set(run.adw_id, row);
      if (this.rows.size > MAX_ROWS) this.trim();
    }
    row.run = run;
    this.renderRow(row);
  }

  removeRow(id) {
    const row = this.rows.get(id);
    if (!row) return;
    row.tr.remove();
    this.rows.delete(id);
    this.scheduleOrder();
  }

  trim() {
    const sorted = [...this.rows.values()].sort(byActivity);
    for (const row of sorted.slice(MAX_ROWS)) this.removeRow(row.run.adw_id);
  }

  renderRow(row) {
    const {run, tr, cells} = row;
    const st = run.status || 'unknown';
    const stalled = run.stalled === true ? 'yes' : 'no';
    const pending = String(Math.max(0, Number(run.pending_approvals) || 0));
    if (
      tr.dataset.status !== st ||
      tr.dataset.stalled !== stalled ||
      tr.dataset.pendingApprovals !== pending
    ) {
      const look = statusLook(st);
      tr.dataset.status = st;
      tr.dataset.stalled = stalled;
      tr.dataset.pendingApprovals = pending;
      replace(
        cells.status,
        h('span', {class: `badge status-${look.cls}`}, icon(look.icon), st),
        stalled === 'yes'
          ? h(
              'span',
              {class: 'badge status-stalled', title: 'No event for a while'},
              icon('stalled'),
              'stalled',
            )
          : null,
        pendingBadge(pending),
      );
    }
    const failed = Array.isArray(run.failed_steps)
      ? run.failed_steps.filter((x) => typeof x === 'string')
      : [];
    const stepKey = `${run.current_step || ''}\u0000${failed.join('\u0000')}`;
    if (cells.step.dataset.key !== stepKey) {
      cells.step.dataset.key = stepKey;
      replace(
        cells.step,
        h('span', {class: 'step-name'}, run.current_step || '–'),
        failed.length
          ? h(
              'span',
              {
                class: 'step-failed status-failed',
                title: `Failed: ${failed.join(', ')}`,
                dataset: {failedSteps: failed.join(',')},
              },
              icon('failed'),
              failed.length === 1 ? `${failed[0]} failed` : `${failed.length} steps failed`,
            )
          : null,
      );
    }
    setText(cells.cost, fmtCost(Number(run.cost_usd) || 0));
    setText(cells.tokens, fmtCompact(Number(run.tokens) || 0));
    cells.tokens.title =
      `${fmtInt(run.tokens || 0)} tokens: input ${fmtInt(run.input_tokens || 0)}, ` +
      `output ${fmtInt(run.output_tokens || 0)}, cache read ${fmtInt(run.cache_read_tokens || 0)}, ` +
      `cache write ${fmtInt(run.cache_creation_tokens || 0)}`;
    setText(cells.events, fmtInt(Number(run.event_count) || 0));
    cells.events.dataset.value = String(run.event_count || 0);
    this.renderAge(row, Date.now());
  }

  renderAge(row, now) {
    const {run, cells} = row;
    const first = parseTs(run.first_ts);
    const last = lastActive(run);
    setText(cells.started, Number.isFinite(first) ? fmtAge(now - first) : '–');
    cells.started.title = Number.isFinite(first) ? fmtDateTime(first) : '';
    setText(cells.age, Number.isFinite(last) ? fmtAge(now - last) : '–');
    cells.age.title = Number.isFinite(last) ? fmtDateTime(last) : '';
  }

  renderAges() {
    const now = Date.now();
    for (const row of this.rows.values()) this.renderAge(row, now);
  }

  scheduleOrder() {
    if (this.orderDirty) return;
    this.orderDirty = true;
    this.raf = requestAnimationFrame(() => {
      this.orderDirty = false;
      for (const row of this.dirtyRows)
        if (this.rows.get(row.run.adw_id) === row) this.renderRow(row);
      this.dirtyRows.clear();
      const sorted = [...this.rows.values()].sort(byActivity);
      const tb = this.tbody;
      let node = tb.firstElementChild;
      for (const row of sorted) {
        if (node !== row.tr) tb.insertBefore(row.tr, node);
        else node = node.nextElementSibling;
      }
      const n = sorted.length;
      this.emptyEl.hidden = n !== 0 || !this.loaded;
      this.table.hidden = n === 0;
      setText(this.countEl, `${n} run${n === 1 ? '' : 's'}`);
    });
  }
}

function lastActive(run) {
  const u = parseTs(run.updated_at);
  return Number.isFinite(u) ? u : parseTs(run.last_ts);
}

// Most recently active first: ids are assigned in commit order, so the highest last id wins.
function byActivity(a, b) {
  const d = (b.run.last_id || 0) - (a.run.last_id || 0);
  return d !== 0 ? d : (lastActive(b.run) || 0) - (lastActive(a.run) || 0);
}
