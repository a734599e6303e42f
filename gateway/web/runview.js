// The run view: one swimlane per step in the order the steps began, the active lane marked,
// a status panel (status, cost, tokens, durations, activity chart) and filters that go to the
// server as a subscribe message.
//
// Loading: the run's history comes from GET /api/events (pages of 1000 following next_since),
// then the view subscribes with since = the last id it holds, so the gateway replays whatever
// came in meanwhile and continues live. Every later (re)subscribe sends the same since, now
// the last id held: nothing is lost or doubled across a reconnect (events are also
// deduplicated by id). Events are queued and rendered in batches, once per animation frame.

import {h, replace, setText} from './dom.js';
import {icon} from './icons.js';
import {COMMON_EVENT_TYPES, classify, statusLook} from './events.js';
import {fmtCost, fmtDateTime, fmtDuration, fmtInt, fmtWhen, parseTs} from './fmt.js';
import {ActivityChart} from './chart.js';
import {Lane, stepDuration} from './lane.js';
import {sameFilters} from './route.js';

const PAGE_LIMIT = 1000;
const BATCH = 4000; // events taken into the model per frame
const RUN_REFRESH_MS = 1000; // at most one GET /api/adws/{id} per second while events arrive
const RUN_POLL_MS = 5000; // and one every 5 s while the run is running
const PHONE = window.matchMedia('(max-width: 640px)');
const seenTypes = new Map(); // adw_id -> Set of event types seen this session (filter choices)

export class RunView {
  // ctx: {api, conn, navigate(route, opts), detail: DetailView}
  constructor(root, ctx, route) {
    this.root = root;
    this.ctx = ctx;
    this.runId = route.runId;
    this.filters = route.filters;
    this.eventId = route.eventId;
    this.openPending = !!route.eventId; // open it once the history holds it
    this.run = null;
    this.gen = 0;
    this.raf = 0;
    this.queue = [];
    this.destroyed = false;
    if (!seenTypes.has(this.runId)) seenTypes.set(this.runId, new Set());
    this.types = seenTypes.get(this.runId);
    this.chart = new ActivityChart({seconds: 300, label: 'Events per second'});
    this.byId = new Map(); // id -> event: everything held, each id once
    this.live = new WeakSet(); // events that arrived live (not history)
    this.lanes = new Map(); // step ('' for none) -> Lane
    this.build();
    this.reset();
    this.refreshRun();
    this.pollTimer = setInterval(() => {
      if (!this.run || this.run.status === 'running') this.refreshRun();
      this.renderStatus();
      for (const lane of this.lanes.values()) lane.renderHead();
    }, RUN_POLL_MS);
    this.tickTimer = setInterval(() => this.renderDuration(), 1000);
    this.load();
  }

  destroy() {
    this.destroyed = true;
    this.gen += 1;
    cancelAnimationFrame(this.raf);
    clearInterval(this.pollTimer);
    clearInterval(this.tickTimer);
    clearTimeout(this.refreshTimer);
    if (this.abort) this.abort.abort();
    this.chart.destroy();
    PHONE.removeEventListener('change', this.onPhone);
    document.removeEventListener('click', this.onDocClick);
    this.ctx.conn.subscribe(null);
  }

  // The route changed but still names this run.
  update(route) {
    if (!sameFilters(route.filters, this.filters)) {
      this.filters = route.filters;
      this.eventId = route.eventId;
      this.openPending = !!route.eventId;
      this.renderFilters();
      this.reset();
      this.load();
      return;
    }
    if (route.eventId !== this.eventId) {
      this.eventId = route.eventId;
      this.openPending = !!route.eventId;
      this.openFromRoute();
    }
  }

  // The filter the server applies: this run, and the chosen steps, event types and types.
  serverFilters() {
    const f = {adw_id: this.runId};
    if (this.filters.steps.length) f.steps = [...this.filters.steps];
    if (this.filters.event_types.length) f.event_types = [...this.filters.event_types];
    if (this.filters.types.length) f.types = [...this.filters.types];
    return f;
  }

  // ---- loading ---------------------------------------------------------------------------

  reset() {
    this.gen += 1;
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    this.queue = [];
    this.byId = new Map();
    this.lanes = new Map();
    this.cursor = 0; // the last id held (or read past): the since of every resubscribe
    this.historyDone = false;
    this.lanesEl.replaceChildren();
    this.chart.clear();
    this.showError('');
    const ds = this.root.firstElementChild.dataset;
    ds.history = 'loading';
    delete ds.subscribed;
    delete ds.rendered;
    this.ctx.conn.subscribe(null); // what arrives for the old filter is dropped
    this.ensureFilterLanes();
  }

  async load() {
    const gen = this.gen;
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    const filters = this.serverFilters();
    let since = 0;
    let loaded = 0;
    this.setLoading(`Loading history…`);
    try {
      for (let pages = 0; pages < 100000; pages++) {
        const page = await this.ctx.api.events(filters, since, PAGE_LIMIT, this.abort.signal);
        if (gen !== this.gen) return;
        for (const ev of page.events) this.queue.push(ev);
        loaded += page.events.length;
        const last = page.events.length ? page.events[page.events.length - 1].id : since;
        const next = Math.max(Number(page.next_since) || 0, last);
        if (next <= since && page.events.length) break; // a server that does not advance
        since = next;
        this.cursor = Math.max(this.cursor, since);
        this.schedule();
        if (page.events.length < PAGE_LIMIT) break;
        this.setLoading(`Loading history… ${fmtInt(loaded)} events`);
      }
    } catch (e) {
      if (gen !== this.gen || e.name === 'AbortError') return;
      // The WebSocket replay (since = what we hold) brings the rest once the gateway answers.
      this.showError(`History over REST failed (${e.message}); continuing over the WebSocket.`);
    }
    if (gen !== this.gen) return;
    this.historyDone = true;
    this.setLoading('');
    this.root.firstElementChild.dataset.history = 'done';
    this.ctx.conn.subscribe({
      filters,
      since: () => this.cursor,
      onEvent: (ev) => {
        if (gen !== this.gen || ev.adw_id !== this.runId) return;
        if (ev.id > this.cursor) this.cursor = ev.id;
        this.live.add(ev);
        this.queue.push(ev);
        this.schedule();
      },
      onSubscribed: ({reconnect}) => {
        if (gen !== this.gen) return;
        this.root.firstElementChild.dataset.subscribed = 'yes';
        this.showError(''); // whatever REST missed, the replay brings
        if (reconnect) this.refreshRun();
      },
    });
    this.schedule();
  }

  // ---- the model and rendering -----------------------------------------------------------

  schedule() {
    if (!this.raf && !this.destroyed) this.raf = requestAnimationFrame(() => this.frame());
  }

  frame() {
    this.raf = 0;
    const gen = this.gen;
    const take = this.queue.length > BATCH ? this.queue.splice(0, BATCH) : this.queue.splice(0);
    let newLane = false,
      newType = false,
      added = 0;
    for (const ev of take) {
      if (this.byId.has(ev.id)) continue; // once, whichever way it came
      this.byId.set(ev.id, ev);
      added += 1;
      const key = typeof ev.step === 'string' ? ev.step : '';
      let lane = this.lanes.get(key);
      if (!lane) {
        lane = this.addLane(key);
        newLane = true;
      }
      lane.add(ev);
      const name = classify(ev).name;
      if (name && !this.types.has(name)) {
        this.types.add(name);
        newType = true;
      }
      this.chart.add(parseTs(ev.received_at), this.live.has(ev));
    }
    if (newLane) this.orderLanes();
    const now = Date.now();
    for (const lane of this.lanes.values()) lane.render(now);
    if (added) {
      this.chart.scheduleDraw();
      setText(this.shownEl, fmtInt(this.byId.size));
      if (this.historyDone) this.requestRunRefresh();
    }
    if (newType || newLane) this.renderFilters();
    if (this.queue.length) this.schedule();
    else if (this.openPending && this.historyDone) {
      this.openFromRoute(); // once: an event the history does not hold is not waited for
      this.openPending = false;
    }
    if (gen === this.gen && this.historyDone && !this.queue.length)
      this.root.firstElementChild.dataset.rendered = String(this.byId.size);
  }

  addLane(key) {
    const lane = new Lane(key, key === '' ? '(no step)' : key);
    this.lanes.set(key, lane);
    const info = this.stepInfo(key);
    lane.setInfo(info, this.isActive(key));
    if (info && Number.isFinite(info.first_id))
      lane.firstId = Math.min(lane.firstId, info.first_id);
    return lane;
  }

  // Lanes for the steps the server knows (within the step filter), even before any event.
  ensureFilterLanes() {
    const steps = this.run && Array.isArray(this.run.steps) ? this.run.steps : [];
    let added = false;
    for (const s of steps) {
      if (typeof s.step !== 'string') continue;
      if (this.filters.steps.length && !this.filters.steps.includes(s.step)) continue;
      if (!this.lanes.has(s.step)) {
        this.addLane(s.step);
        added = true;
      }
    }
    if (added) {
      this.orderLanes();
      for (const lane of this.lanes.values()) lane.render();
    }
  }

  stepInfo(key) {
    const steps = this.run && Array.isArray(this.run.steps) ? this.run.steps : [];
    return steps.find((s) => s.step === key) || null;
  }

  isActive(key) {
    return (
      !!this.run && this.run.status === 'running' && key !== '' && this.run.current_step === key
    );
  }

  // Lanes in the order their steps began: the step's first id (from the server when known).
  orderLanes() {
    const order = [...this.lanes.values()].sort(
      (a, b) => a.firstId - b.firstId || (a.key < b.key ? -1 : 1),
    );
    const box = this.lanesEl;
    let node = box.firstElementChild;
    for (const lane of order) {
      if (node !== lane.el) box.insertBefore(lane.el, node);
      else node = node.nextElementSibling;
    }
    this.emptyLanes.hidden = order.length !== 0;
  }

  // ---- the run's state (status panel) ----------------------------------------------------

  requestRunRefresh() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refreshRun();
    }, RUN_REFRESH_MS);
  }

  async refreshRun() {
    const gen = this.gen;
    let run;
    try {
      run = await this.ctx.api.run(this.runId);
    } catch (e) {
      if (this.destroyed) return;
      if (e.status === 404) {
        this.run = null;
        this.renderStatus(e);
        return;
      }
      return; // keep what is shown; the next refresh tries again
    }
    if (this.destroyed) return;
    this.run = run;
    if (gen === this.gen) this.ensureFilterLanes();
    for (const [key, lane] of this.lanes) {
      const info = this.stepInfo(key);
      if (info && Number.isFinite(info.first_id))
        lane.firstId = Math.min(lane.firstId, info.first_id);
      lane.setInfo(info, this.isActive(key));
    }
    this.orderLanes();
    this.renderStatus();
    this.renderFilters();
    const active = this.run.status === 'running' ? this.run.current_step : null;
    if (active !== this.shownActive) {
      this.shownActive = active;
      const lane = active !== null ? this.lanes.get(active) : null;
      if (lane) this.revealLane(lane);
    }
  }

  // Scrolls the lanes sideways (only) so that `lane` is in view.
  revealLane(lane) {
    const box = this.lanesBox;
    const l = lane.el.offsetLeft,
      r = l + lane.el.offsetWidth;
    if (l < box.scrollLeft) box.scrollLeft = l - 12;
    else if (r > box.scrollLeft + box.clientWidth) box.scrollLeft = r - box.clientWidth + 12;
  }

  // ---- DOM -------------------------------------------------------------------------------

  build() {
    const f = (name, el) => {
      el.dataset.field = name;
      return el;
    };
    this.titleStatus = h('span', {class: 'badge'});
    this.loadingEl = h('span', {class: 'loading muted', role: 'status'});
    this.errorEl = h('p', {class: 'banner banner-error', hidden: true, role: 'alert'});
    this.stepChips = h('div', {class: 'chips', role: 'group', 'aria-label': 'Steps'});
    this.typeList = h('div', {class: 'menu-list'});
    this.typeSummary = h('span');
    this.typeMenu = h(
      'details',
      {class: 'menu'},
      h('summary', {class: 'btn'}, icon('filter'), this.typeSummary),
      h('div', {class: 'menu-pop', role: 'group', 'aria-label': 'Event types'}, this.typeList),
    );
    this.kindBtns = h('div', {class: 'seg', role: 'group', 'aria-label': 'Kind of event'});
    this.clearBtn = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-quiet',
        on: {click: () => this.setFilters({steps: [], event_types: [], types: []})},
      },
      icon('close'),
      'Clear filters',
    );
    this.lanesEl = h('div', {class: 'lanes-track'});
    this.emptyLanes = h(
      'p',
      {class: 'empty', hidden: true},
      'No events yet for this run and filter. They appear here as they arrive.',
    );
    this.lanesBox = h(
      'div',
      {class: 'lanes', 'aria-label': 'Swimlanes, one per step'},
      this.emptyLanes,
      this.lanesEl,
    );

    this.stStatus = f('status', h('span', {class: 'badge'}));
    this.stStep = f('current_step', h('span'));
    this.stDuration = f('duration', h('span'));
    this.stCost = f('cost', h('span', {class: 'big'}));
    this.stTokens = f('tokens', h('span', {class: 'big'}));
    this.stIn = f('input_tokens', h('span'));
    this.stOut = f('output_tokens', h('span'));
    this.stCacheR = f('cache_read_tokens', h('span'));
    this.stCacheW = f('cache_creation_tokens', h('span'));
    this.stEvents = f('event_count', h('span'));
    this.shownEl = f('shown', h('span'));
    this.stStarted = f('started', h('span'));
    this.stepsBody = h('tbody');
    this.noRunEl = h('p', {class: 'muted', hidden: true});
    const kv = (label, el) => [h('dt', null, label), h('dd', null, el)];
    this.panel = h(
      'aside',
      {class: 'status-panel', 'aria-label': 'Run status'},
      h(
        'div',
        {class: 'panel-block'},
        h('h2', {class: 'panel-title'}, 'Status'),
        this.noRunEl,
        h(
          'dl',
          {class: 'kv'},
          kv('Status', this.stStatus),
          kv('Current step', this.stStep),
          kv('Duration', this.stDuration),
          kv('Started', this.stStarted),
        ),
      ),
      h(
        'div',
        {class: 'panel-block totals'},
        h('div', {class: 'total'}, h('span', {class: 'muted'}, 'Cost'), this.stCost),
        h('div', {class: 'total'}, h('span', {class: 'muted'}, 'Tokens'), this.stTokens),
        h(
          'dl',
          {class: 'kv kv-small'},
          kv('Input', this.stIn),
          kv('Output', this.stOut),
          kv('Cache read', this.stCacheR),
          kv('Cache write', this.stCacheW),
          kv('Events', this.stEvents),
          kv('Shown here', this.shownEl),
        ),
      ),
      (this.more = h(
        'details',
        {class: 'panel-more', open: !PHONE.matches},
        h('summary', {class: 'panel-more-toggle'}, 'Activity and steps'),
        h(
          'div',
          {class: 'panel-block'},
          h(
            'h2',
            {class: 'panel-title'},
            'Activity',
            h('span', {class: 'muted'}, ' · events/s, last 5 min'),
          ),
          this.chart.el,
        ),
        h(
          'div',
          {class: 'panel-block'},
          h('h2', {class: 'panel-title'}, 'Steps'),
          h(
            'table',
            {class: 'steps'},
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', {scope: 'col'}, 'Step'),
                h('th', {scope: 'col'}, 'Status'),
                h('th', {scope: 'col', class: 'num'}, 'Time'),
                h('th', {scope: 'col', class: 'num'}, 'Events'),
              ),
            ),
            this.stepsBody,
          ),
        ),
      )),
    );
    this.onPhone = () => {
      this.more.open = !PHONE.matches;
    };
    PHONE.addEventListener('change', this.onPhone);

    const view = h(
      'section',
      {class: 'page run-page', 'aria-labelledby': 'run-title', dataset: {runId: this.runId}},
      h(
        'div',
        {class: 'run-head'},
        h('a', {class: 'btn btn-quiet back', href: '#/'}, icon('back'), 'Runs'),
        h('h1', {id: 'run-title'}, h('span', {class: 'muted'}, 'Run '), this.runId),
        this.titleStatus,
        this.loadingEl,
      ),
      h(
        'div',
        {class: 'filters', role: 'search', 'aria-label': 'Filters (sent to the server)'},
        h('span', {class: 'filters-label muted'}, 'Steps'),
        this.stepChips,
        this.typeMenu,
        this.kindBtns,
        this.clearBtn,
      ),
      this.errorEl,
      h('div', {class: 'run-body'}, this.lanesBox, this.panel),
    );
    replace(this.root, view);

    this.lanesEl.addEventListener('click', (e) => {
      const card = e.target.closest('.card');
      if (card) this.openCard(card);
    });
    this.lanesEl.addEventListener('keydown', (e) => this.onKey(e));
    // The types menu closes with Escape (focus back on its button) and on a click elsewhere.
    this.typeMenu.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.typeMenu.open) return;
      e.preventDefault();
      this.typeMenu.open = false;
      this.typeMenu.querySelector('summary').focus();
    });
    this.onDocClick = (e) => {
      if (this.typeMenu.open && !this.typeMenu.contains(e.target)) this.typeMenu.open = false;
    };
    document.addEventListener('click', this.onDocClick);
    this.renderFilters();
    this.renderStatus();
  }

  setLoading(text) {
    setText(this.loadingEl, text);
  }

  showError(text) {
    this.errorEl.hidden = !text;
    this.errorEl.textContent = text || '';
  }

  setFilters(filters) {
    this.ctx.navigate({view: 'run', runId: this.runId, filters, eventId: null}, {replace: true});
  }

  renderFilters() {
    const f = this.filters;
    // Steps: the server's, the lanes', and the chosen ones.
    const steps = [];
    const add = (s) => {
      if (typeof s === 'string' && !steps.includes(s)) steps.push(s);
    };
    if (this.run && Array.isArray(this.run.steps)) this.run.steps.forEach((s) => add(s.step));
    [...this.lanes.values()]
      .sort((a, b) => a.firstId - b.firstId)
      .forEach((l) => l.key && add(l.key));
    f.steps.forEach(add);
    const chips = steps.map((s) => {
      const on = f.steps.includes(s);
      return h(
        'button',
        {
          type: 'button',
          class: 'chip',
          'aria-pressed': on ? 'true' : 'false',
          dataset: {step: s},
          on: {
            click: () => {
              const next = on ? f.steps.filter((x) => x !== s) : [...f.steps, s];
              this.setFilters({...f, steps: next});
            },
          },
        },
        on ? icon('completed') : null,
        s,
      );
    });
    if (!chips.length) chips.push(h('span', {class: 'muted'}, 'none yet'));
    this.stepChips.replaceChildren(...chips);

    // Event types: those seen for this run, the chosen ones, then the common ones.
    const types = [...new Set([...this.types, ...f.event_types])].sort();
    for (const t of COMMON_EVENT_TYPES) if (!types.includes(t)) types.push(t);
    const focusedType =
      document.activeElement && this.typeList.contains(document.activeElement)
        ? document.activeElement.value
        : null;
    this.typeList.replaceChildren(
      ...types.map((t) => {
        const cb = h('input', {
          type: 'checkbox',
          value: t,
          checked: f.event_types.includes(t),
          on: {
            change: () => {
              const next = cb.checked
                ? [...f.event_types, t]
                : f.event_types.filter((x) => x !== t);
              this.setFilters({...f, event_types: next});
            },
          },
        });
        return h('label', {class: 'menu-item', dataset: {type: t}}, cb, t);
      }),
    );
    if (focusedType) {
      const again = [...this.typeList.querySelectorAll('input')].find(
        (i) => i.value === focusedType,
      );
      if (again) again.focus();
    }
    setText(
      this.typeSummary,
      f.event_types.length ? `Event types: ${f.event_types.join(', ')}` : 'Event types: all',
    );

    const kinds = [
      ['All', []],
      ['Agent', ['adw_event']],
      ['System', ['system']],
    ];
    this.kindBtns.replaceChildren(
      ...kinds.map(([label, val]) => {
        const on = f.types.length === val.length && val.every((v) => f.types.includes(v));
        return h(
          'button',
          {
            type: 'button',
            class: 'seg-btn',
            'aria-pressed': on ? 'true' : 'false',
            dataset: {kind: label.toLowerCase()},
            on: {click: () => this.setFilters({...f, types: val})},
          },
          label,
        );
      }),
    );
    this.clearBtn.hidden = !(f.steps.length || f.event_types.length || f.types.length);
  }

  renderStatus(err) {
    const run = this.run;
    this.noRunEl.hidden = !!run;
    if (!run) {
      this.noRunEl.textContent =
        err && err.status === 404
          ? 'No such run yet: it appears when its first event arrives.'
          : 'Loading…';
    }
    const st = run ? run.status || 'unknown' : 'unknown';
    for (const el of [this.stStatus, this.titleStatus]) {
      if (el.dataset.status === st) continue;
      const look = statusLook(st);
      el.dataset.status = st;
      el.className = `badge status-${look.cls}`;
      el.replaceChildren(icon(look.icon), run ? st : 'unknown');
    }
    setText(this.stStep, run && run.current_step ? run.current_step : '–');
    setText(this.stCost, fmtCost(run ? Number(run.cost_usd) || 0 : NaN));
    setText(this.stTokens, fmtInt(run ? Number(run.tokens) || 0 : NaN));
    setText(this.stIn, fmtInt(run ? Number(run.input_tokens) || 0 : NaN));
    setText(this.stOut, fmtInt(run ? Number(run.output_tokens) || 0 : NaN));
    setText(this.stCacheR, fmtInt(run ? Number(run.cache_read_tokens) || 0 : NaN));
    setText(this.stCacheW, fmtInt(run ? Number(run.cache_creation_tokens) || 0 : NaN));
    setText(this.stEvents, fmtInt(run ? Number(run.event_count) || 0 : NaN));
    const started = run ? parseTs(run.first_ts) : NaN;
    setText(this.stStarted, fmtWhen(started));
    this.stStarted.title = fmtDateTime(started);
    this.renderDuration();

    const steps = run && Array.isArray(run.steps) ? run.steps : [];
    const rows = steps.map((s) => {
      const look = statusLook(s.status);
      const active = this.isActive(s.step);
      return h(
        'tr',
        {dataset: {step: s.step}, class: active ? 'is-active' : null},
        h(
          'th',
          {scope: 'row'},
          h(
            'button',
            {type: 'button', class: 'link', on: {click: () => this.showLane(s.step)}},
            s.step,
          ),
          active ? h('span', {class: 'sr-only'}, ' (active)') : null,
        ),
        h('td', {class: `status-${look.cls}`}, icon(look.icon), String(s.status || '–')),
        h(
          'td',
          {class: 'num', dataset: {field: 'step_duration'}},
          stepDuration(s, Date.now()) || '–',
        ),
        h('td', {class: 'num'}, fmtInt(Number(s.event_count) || 0)),
      );
    });
    this.stepsBody.replaceChildren(...rows);
  }

  renderDuration() {
    const run = this.run;
    if (!run) {
      setText(this.stDuration, '–');
      return;
    }
    const a = parseTs(run.first_ts),
      b = parseTs(run.last_ts);
    let text;
    if (run.status === 'running' && Number.isFinite(a))
      text = `${fmtDuration(Math.max(0, Date.now() - a))} so far`;
    else if (Number.isFinite(run.duration_ms)) text = fmtDuration(run.duration_ms);
    else text = Number.isFinite(a) && Number.isFinite(b) ? fmtDuration(b - a) : '–';
    setText(this.stDuration, text);
  }

  showLane(step) {
    const lane = this.lanes.get(step);
    if (!lane) return;
    this.revealLane(lane);
    const last = lane.list.lastElementChild;
    if (last) last.focus({preventScroll: true});
  }

  // ---- detail and keyboard ---------------------------------------------------------------

  openCard(card) {
    const ev = this.byId.get(Number(card.dataset.eventId));
    if (!ev) return;
    this.eventId = ev.id;
    this.ctx.detail.open(ev, card);
    this.ctx.navigate(
      {view: 'run', runId: this.runId, filters: this.filters, eventId: ev.id},
      {replace: true, silent: true},
    );
  }

  // Called when the detail view closed.
  detailClosed() {
    if (!this.eventId) return;
    this.eventId = null;
    this.ctx.navigate(
      {view: 'run', runId: this.runId, filters: this.filters, eventId: null},
      {replace: true, silent: true},
    );
  }

  openFromRoute() {
    if (!this.eventId) {
      this.ctx.detail.close();
      return;
    }
    const ev = this.byId.get(this.eventId);
    if (!ev) return;
    this.openPending = false;
    const card = this.lanesEl.querySelector(`.card[data-event-id="${ev.id}"]`);
    this.ctx.detail.open(ev, card);
  }

  onKey(e) {
    const card = e.target.closest && e.target.closest('.card');
    if (!card) return;
    const laneEl = card.closest('.lane');
    const lane = this.lanes.get(laneEl.dataset.step);
    let target = null;
    switch (e.key) {
      case 'ArrowDown':
        target = card.nextElementSibling;
        if (!target && lane && lane.end < lane.events.length) {
          lane.pageNewer();
          target = card.nextElementSibling;
        }
        break;
      case 'ArrowUp':
        target = card.previousElementSibling;
        if (!target && lane && lane.start > 0) {
          lane.pageOlder(false);
          target = card.previousElementSibling;
        }
        break;
      case 'Home':
        target = card.parentElement.firstElementChild;
        break;
      case 'End':
        target = card.parentElement.lastElementChild;
        break;
      case 'ArrowLeft':
      case 'ArrowRight': {
        let other =
          e.key === 'ArrowLeft' ? laneEl.previousElementSibling : laneEl.nextElementSibling;
        while (other && !other.querySelector('.card')) {
          other = e.key === 'ArrowLeft' ? other.previousElementSibling : other.nextElementSibling;
        }
        if (other)
          target = nearestCard(other.querySelectorAll('.card'), card.getBoundingClientRect().top);
        break;
      }
      default:
        return;
    }
    e.preventDefault();
    if (target) {
      target.focus({preventScroll: true});
      target.scrollIntoView({block: 'nearest', inline: 'nearest'});
    }
  }
}

function nearestCard(cards, y) {
  let best = null,
    bestD = Infinity;
  for (const c of cards) {
    const d = Math.abs(c.getBoundingClientRect().top - y);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}
