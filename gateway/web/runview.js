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
import {
  COMMON_EVENT_TYPES,
  agentIdOf,
  applyEventToRun,
  emptyRun,
  eventTime,
  classify,
  impliedRunStatus,
  impliedStepStatus,
  isFailure,
  isStall,
  statusLook,
  stopFailureReason,
  toolEventOutcome,
  toolUseId,
} from './events.js';
import {fmtCost, fmtDateTime, fmtDuration, fmtInt, fmtWhen, parseTs} from './fmt.js';
import {ActivityChart} from './chart.js';
import {ApprovalPanel} from './approvals.js';
import {Lane, stepDuration} from './lane.js';
import {sameFilters} from './route.js';
import {Replay} from './replay.js';

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
    this.replayMode = !!route.replay;
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
    this.seen = freshSeen();
    // Pending approvals stand out at the top (approvals.js); a replay shows the past only.
    this.approvals = route.replay ? null : new ApprovalPanel(ctx, this.runId);
    this.build();
    this.reset();
    if (this.replayMode) {
      this.run = emptyRun(this.runId);
      this.ctx.api.run(this.runId).then(
        (run) => this.replay && this.replay.setEndHint(run),
        () => {},
      );
    } else {
      this.refreshRun();
    }
    this.pollTimer = setInterval(() => {
      if (!this.replayMode && (!this.run || this.runStatus() === 'running')) this.refreshRun();
      this.renderStatus();
      for (const lane of this.lanes.values()) lane.tick();
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
    if (this.replay) this.replay.destroy();
    if (this.approvals) this.approvals.destroy();
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

  filtered() {
    const f = this.filters;
    return !!(f.steps.length || f.event_types.length || f.types.length);
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
    // What the events held say of the run, for what REST does not know yet (or at all):
    // the latest run-level status, each step's status, the stall notice, a StopFailure,
    // the tool calls and the subagents.
    this.seen = freshSeen();
    this.historyDone = false;
    this.settled = false;
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
    if (this.replayMode) {
      this.historyDone = true;
      const ds = this.root.firstElementChild.dataset;
      ds.history = 'done';
      ds.subscribed = 'replay';
      if (!this.replay) {
        this.replay = new Replay(this);
        this.replayBox.replaceChildren(this.replay.el);
      }
      return;
    }
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
        // Dropped by the retention: the resume starts from the first id kept.
        if (!page.complete && page.first_id > 0)
          this.cursor = Math.max(this.cursor, page.first_id - 1);
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

  // ---- replay ----------------------------------------------------------------------------

  // Replay hands over the events the playhead passed; rebuild: these are all of them (the
  // playhead went back), the view starts over with them.
  replayShow(events, rebuild) {
    if (rebuild) {
      const open = this.eventId;
      this.reset();
      this.historyDone = true;
      const ds = this.root.firstElementChild.dataset;
      ds.history = 'done';
      ds.subscribed = 'replay';
      this.run = emptyRun(this.runId);
      this.eventId = open;
    }
    for (const ev of events) {
      applyEventToRun(this.run, ev);
      this.queue.push(ev);
    }
    this.schedule();
  }

  leaveReplay() {
    this.ctx.navigate({view: 'run', runId: this.runId, filters: this.filters, eventId: null});
  }

  route(extra) {
    return {
      view: 'run',
      runId: this.runId,
      filters: this.filters,
      eventId: null,
      replay: this.replayMode,
      ...extra,
    };
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
      stateChanged = false,
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
      if (this.approvals) this.approvals.onEvent(ev, this.live.has(ev));
      if (this.note(ev)) stateChanged = true;
      const name = classify(ev).name;
      if (name && !this.types.has(name)) {
        this.types.add(name);
        newType = true;
      }
      this.chart.add(
        this.replayMode ? eventTime(ev) : parseTs(ev.received_at),
        this.live.has(ev),
      );
    }
    if (newLane) this.orderLanes();
    if (stateChanged) {
      this.syncLanes();
      this.renderStatus();
    }
    const now = Date.now();
    for (const lane of this.lanes.values()) lane.render(now);
    if (added) {
      this.chart.scheduleDraw();
      setText(this.shownEl, fmtInt(this.byId.size));
      if (this.historyDone && !this.replayMode) this.requestRunRefresh();
      if (this.replayMode) {
        this.syncLanes(); // the current step moves with the playhead
        this.renderStatus();
      }
    }
    if (newType || newLane) this.renderFilters();
    if (this.queue.length) this.schedule();
    else if (this.openPending && this.historyDone) {
      this.openFromRoute(); // once: an event the history does not hold is not waited for
      this.openPending = false;
    }
    if (gen === this.gen && this.historyDone && !this.queue.length) {
      if (!this.settled) {
        this.settled = true; // every event of the history is in: the view's own rules apply
        this.syncLanes();
        this.renderStatus();
      }
      this.root.firstElementChild.dataset.rendered = String(this.byId.size);
    }
  }

  // Takes what the event says of the run into this.seen; true when the status panel or the
  // lane headers change.
  note(ev) {
    const s = this.seen;
    let changed = false;
    if (ev.id > s.maxId) {
      s.maxId = ev.id;
      const st = isStall(ev);
      if (st !== s.stalled) changed = true;
      s.stalled = st; // the run's next event clears it
    }
    const rs = impliedRunStatus(ev);
    if (rs && (!s.run || ev.id > s.run.id)) {
      s.run = {status: rs, id: ev.id};
      changed = true;
    }
    const ss = impliedStepStatus(ev);
    if (ss) {
      const cur = s.steps.get(ev.step);
      if (!cur || ev.id > cur.id) {
        s.steps.set(ev.step, {status: ss, id: ev.id});
        changed = true;
      }
    }
    const sf = stopFailureReason(ev);
    if (sf && (!s.stop || ev.id > s.stop.id)) {
      s.stop = {reason: sf, id: ev.id};
      changed = true;
    }
    const tid = toolUseId(ev);
    if (tid) {
      const cur = s.tools.get(tid);
      const o = toolEventOutcome(ev);
      const next = cur === 'failed' ? 'failed' : o || cur || 'running';
      if (next !== cur) {
        s.tools.set(tid, next);
        changed = true;
      }
    }
    const ag = agentIdOf(ev);
    if (ag && !s.agents.has(ag)) {
      s.agents.add(ag);
      changed = true;
    }
    return changed;
  }

  // The run's status: REST's, unless a run-level event held is newer than REST's answer.
  runStatus() {
    const run = this.run,
      s = this.seen;
    // Holding every event of the run (no filter, history loaded), the view applies the rule
    // itself: the last run-level event's status, else running.
    if (this.historyDone && !this.queue.length && !this.filtered() && this.byId.size)
      return s.run ? s.run.status : 'running';
    let st = run ? run.status || 'unknown' : null;
    if (s.run && (!run || s.run.id > (Number(run.last_id) || 0))) st = s.run.status;
    if (!st && this.byId.size) st = 'running';
    return st;
  }

  // Whether the run is stalled: REST's `stalled` when it knows every event held, else
  // whether the newest event held is the stall notice.
  isStalled() {
    const run = this.run;
    if (run && typeof run.stalled === 'boolean' && (Number(run.last_id) || 0) >= this.seen.maxId)
      return run.stalled;
    return this.seen.stalled;
  }

  // A step's status: REST's (steps, failed_steps), unless an event held is newer.
  stepStatus(key) {
    const run = this.run;
    const info = this.stepInfo(key);
    let st = info && info.status ? info.status : null;
    if (!st && run && Array.isArray(run.failed_steps) && run.failed_steps.includes(key))
      st = 'failed';
    const live = this.seen.steps.get(key);
    if (live && (!st || !run || live.id > (Number(run.last_id) || 0))) st = live.status;
    return st;
  }

  // Every step the view knows of, REST's first (in first_id order), then the ones only
  // events have told of.
  knownSteps() {
    const out = [];
    const add = (k) => {
      if (typeof k === 'string' && k && !out.includes(k)) out.push(k);
    };
    if (this.run && Array.isArray(this.run.steps)) this.run.steps.forEach((s) => add(s.step));
    if (this.run && Array.isArray(this.run.failed_steps)) this.run.failed_steps.forEach(add);
    [...this.seen.steps.keys()]
      .sort((a, b) => this.laneFirst(a) - this.laneFirst(b))
      .forEach(add);
    return out;
  }

  laneFirst(key) {
    const lane = this.lanes.get(key);
    return lane ? lane.firstId : Infinity;
  }

  failedSteps() {
    return this.knownSteps().filter((k) => isFailure(this.stepStatus(k)));
  }

  // The lane header's step: REST's with the status as the view knows it.
  laneInfo(key) {
    const info = this.stepInfo(key);
    const st = this.stepStatus(key);
    if (!info && !st) return null;
    return {...(info || {step: key}), status: st};
  }

  syncLanes() {
    const st = this.runStatus();
    const ended = !!st && st !== 'running' && st !== 'unknown';
    for (const [key, lane] of this.lanes) {
      lane.setEnded(ended);
      lane.setInfo(this.laneInfo(key), this.isActive(key));
      lane.render();
    }
  }

  agentLookup() {
    const agents = this.run && Array.isArray(this.run.agents) ? this.run.agents : null;
    if (!agents) return null;
    const m = new Map();
    for (const a of agents) if (a && typeof a.agent_id === 'string') m.set(a.agent_id, a);
    return (id) => m.get(id) || null;
  }

  addLane(key) {
    const lane = new Lane(key, key === '' ? '(no step)' : key);
    this.lanes.set(key, lane);
    const info = this.stepInfo(key);
    lane.setAgentInfo(this.agentLookup());
    lane.setInfo(this.laneInfo(key), this.isActive(key));
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
      !!this.run && this.runStatus() === 'running' && key !== '' && this.run.current_step === key
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

  // Spend against budget: "$4.02 / $5.00" and a bar, coloured from 80 % (warning) and 100 %
  // (exceeded), as ingest raises budget_warning and budget_exceeded; hidden without a budget.
  renderBudget(run) {
    const budget = run ? Number(run.budget_usd) : NaN;
    this.budgetBox.hidden = !(budget > 0);
    if (!(budget > 0)) return;
    const spend = Number(run.cost_usd) || 0;
    const pct = (spend / budget) * 100;
    const level = pct >= 100 ? 'exceeded' : pct >= 80 ? 'warning' : 'ok';
    setText(this.stBudget, `$${spend.toFixed(2)} / $${budget.toFixed(2)}`);
    this.budgetBox.dataset.level = level;
    this.stBudgetFill.style.width = `${Math.min(100, pct).toFixed(1)}%`;
    this.budgetBar.setAttribute('aria-valuemax', budget.toFixed(2));
    this.budgetBar.setAttribute('aria-valuenow', spend.toFixed(2));
    this.budgetBar.setAttribute('aria-valuetext', `${Math.floor(pct)}% of the budget (${level})`);
  }

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
    if (this.approvals) this.approvals.syncCount(run.pending_approvals);
    if (gen === this.gen) this.ensureFilterLanes();
    const agents = this.agentLookup();
    for (const [key, lane] of this.lanes) {
      const info = this.stepInfo(key);
      if (info && Number.isFinite(info.first_id))
        lane.firstId = Math.min(lane.firstId, info.first_id);
      lane.setAgentInfo(agents);
    }
    this.syncLanes();
    this.orderLanes();
    this.renderStatus();
    this.renderFilters();
    const active = this.runStatus() === 'running' ? this.run.current_step : null;
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
    const stallBadge = () =>
      h(
        'span',
        {class: 'badge status-stalled', hidden: true, title: 'No event for a while'},
        icon('stalled'),
        'stalled',
      );
    this.titleStall = stallBadge();
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
    this.stBudget = f('budget', h('span', {class: 'budget-text'}));
    this.stBudgetFill = h('span', {class: 'budget-fill'});
    this.budgetBar = h(
      'div',
      {class: 'budget-bar', role: 'meter', 'aria-valuemin': 0, 'aria-label': 'Spend vs budget'},
      this.stBudgetFill,
    );
    this.budgetBox = h(
      'div',
      {class: 'budget', hidden: true},
      h('span', {class: 'muted'}, 'Budget'),
      this.stBudget,
      this.budgetBar,
    );
    this.stIn = f('input_tokens', h('span'));
    this.stOut = f('output_tokens', h('span'));
    this.stCacheR = f('cache_read_tokens', h('span'));
    this.stCacheW = f('cache_creation_tokens', h('span'));
    this.stEvents = f('event_count', h('span'));
    this.shownEl = f('shown', h('span'));
    this.stStarted = f('started', h('span'));
    this.stStall = f('stalled', stallBadge());
    this.stFailed = f('failed_steps', h('span', {class: 'status-failed failed-steps'}));
    this.stTools = f('tool_calls', h('span'));
    this.stToolFail = f('tool_failures', h('span', {class: 'status-failed tool-failures'}));
    this.stAgents = f('agents', h('span'));
    this.stStop = f('stop_failure', h('p', {class: 'stop-reason'}));
    this.stopBlock = h(
      'div',
      {class: 'panel-block stop-failure', hidden: true, role: 'status'},
      h('h2', {class: 'panel-title'}, icon('error'), ' Stop failure'),
      this.stStop,
    );
    this.stepsBody = h('tbody');
    this.noRunEl = h('p', {class: 'muted', hidden: true});
    const kv = (label, el) => [h('dt', null, label), h('dd', null, el)];
    this.failedRow = kv('Failed steps', this.stFailed);
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
          kv('Status', [this.stStatus, ' ', this.stStall]),
          this.failedRow,
          kv('Current step', this.stStep),
          kv('Duration', this.stDuration),
          kv('Started', this.stStarted),
          kv('Tool calls', [this.stTools, ' ', this.stToolFail]),
          kv('Subagents', this.stAgents),
        ),
      ),
      this.stopBlock,
      h(
        'div',
        {class: 'panel-block totals'},
        h('div', {class: 'total'}, h('span', {class: 'muted'}, 'Cost'), this.stCost),
        h('div', {class: 'total'}, h('span', {class: 'muted'}, 'Tokens'), this.stTokens),
        this.budgetBox,
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
        this.titleStall,
        this.loadingEl,
        h(
          'div',
          {class: 'run-actions'},
          this.replayMode
            ? null
            : h(
                'a',
                {class: 'btn replay-start', href: formatReplayHash(this.runId)},
                icon('running'),
                'Replay',
              ),
          this.exportLink('ndjson', 'Export NDJSON'),
          this.exportLink('csv', 'Export CSV'),
        ),
      ),
      this.approvals ? this.approvals.el : null,
      (this.replayBox = h('div', {class: 'replay-box'})),
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

  // A link to the run's export (GET /api/adws/{id}/events.<kind>). With a token, the download
  // goes through fetch (the Authorization header) and a Blob URL.
  exportLink(kind, label) {
    const url = `/api/adws/${encodeURIComponent(this.runId)}/events.${kind}`;
    const name = `${this.runId}-events.${kind}`;
    const token = this.ctx.api.token;
    const a = h(
      'a',
      {class: `btn btn-quiet export-${kind}`, href: url, download: name, dataset: {export: kind}},
      label,
    );
    if (token) {
      a.addEventListener('click', async (e) => {
        e.preventDefault();
        try {
          const res = await fetch(url, {headers: {Authorization: `Bearer ${token}`}});
          if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
          const blob = await res.blob();
          const href = URL.createObjectURL(blob);
          const tmp = h('a', {href, download: name, hidden: true});
          document.body.append(tmp);
          tmp.click();
          tmp.remove();
          setTimeout(() => URL.revokeObjectURL(href), 60000);
        } catch (err) {
          this.showError(`Export failed (${err.message}).`);
        }
      });
    }
    return a;
  }

  setLoading(text) {
    setText(this.loadingEl, text);
  }

  showError(text) {
    this.errorEl.hidden = !text;
    this.errorEl.textContent = text || '';
  }

  setFilters(filters) {
    this.ctx.navigate(this.route({filters}), {replace: true});
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
    const st = this.runStatus() || 'unknown';
    for (const el of [this.stStatus, this.titleStatus]) {
      if (el.dataset.status === st) continue;
      const look = statusLook(st);
      el.dataset.status = st;
      el.className = `badge status-${look.cls}`;
      el.replaceChildren(icon(look.icon), st);
    }
    const stalled = this.isStalled();
    this.stStall.hidden = this.titleStall.hidden = !stalled;
    this.root.firstElementChild.dataset.stalled = stalled ? 'yes' : 'no';
    const failed = this.failedSteps();
    for (const el of this.failedRow) el.hidden = !failed.length;
    setText(this.stFailed, failed.join(', '));
    const seen = this.seen;
    let calls = seen.tools.size,
      fails = 0;
    for (const o of seen.tools.values()) if (o === 'failed') fails += 1;
    if (run && Number.isFinite(run.tool_calls)) calls = Math.max(calls, run.tool_calls);
    if (run && Number.isFinite(run.tool_failures)) fails = Math.max(fails, run.tool_failures);
    setText(this.stTools, fmtInt(calls));
    setText(this.stToolFail, `${fmtInt(fails)} failed`);
    this.stToolFail.dataset.value = String(fails);
    this.stToolFail.hidden = fails === 0;
    const agents = Math.max(
      seen.agents.size,
      run && Array.isArray(run.agents) ? run.agents.length : 0,
    );
    setText(this.stAgents, fmtInt(agents));
    let stop = seen.stop;
    const rsf = run && run.stop_failure;
    if (rsf && typeof rsf === 'object' && typeof rsf.reason === 'string') {
      const id = Number(rsf.id) || 0;
      if (!stop || id >= stop.id) stop = {reason: rsf.reason, id};
    }
    this.stopBlock.hidden = !stop;
    setText(this.stStop, stop ? stop.reason : '');
    setText(this.stStep, run && run.current_step ? run.current_step : '–');
    setText(this.stCost, fmtCost(run ? Number(run.cost_usd) || 0 : NaN));
    this.renderBudget(run);
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

    const steps = this.knownSteps().map(
      (k) => ({...(this.stepInfo(k) || {step: k}), status: this.stepStatus(k)}),
    );
    const rows = steps.map((s) => {
      const look = statusLook(s.status);
      const active = this.isActive(s.step);
      const cls = [active ? 'is-active' : '', look.cls === 'failed' ? 'is-failed' : '']
        .join(' ')
        .trim();
      return h(
        'tr',
        {dataset: {step: s.step, status: String(s.status || '')}, class: cls || null},
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
        h(
          'td',
          {class: 'num'},
          fmtInt(Number(s.event_count) || (this.lanes.get(s.step) || {}).count || 0),
        ),
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
    if (this.replayMode) text = fmtDuration(this.replay ? this.replay.at : 0);
    else if (this.runStatus() === 'running' && Number.isFinite(a))
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

  // The events a card shows (one, or a tool call's).
  cardEvents(card) {
    const ids = String(card.dataset.eventIds || card.dataset.eventId || '').split(' ');
    return ids.map((i) => this.byId.get(Number(i))).filter(Boolean);
  }

  openCard(card) {
    const evs = this.cardEvents(card);
    const ev = evs[0];
    if (!ev) return;
    this.eventId = ev.id;
    this.ctx.detail.open(ev, card, evs);
    this.ctx.navigate(this.route({eventId: ev.id}), {replace: true, silent: true});
  }

  // Called when the detail view closed.
  detailClosed() {
    if (!this.eventId) return;
    this.eventId = null;
    this.ctx.navigate(this.route(), {replace: true, silent: true});
  }

  openFromRoute() {
    if (!this.eventId) {
      this.ctx.detail.close();
      return;
    }
    const ev = this.byId.get(this.eventId);
    if (!ev) return;
    this.openPending = false;
    const card = this.lanesEl.querySelector(`.card[data-event-ids~="${ev.id}"]`);
    for (const old of this.lanesEl.querySelectorAll('.card.is-target'))
      old.classList.remove('is-target');
    if (card) {
      card.classList.add('is-target');
      scrollIntoLane(card);
      const lane = this.lanes.get(card.closest('.lane')?.dataset.step);
      if (lane) this.revealLane(lane);
    }
    this.ctx.detail.open(ev, card, card ? this.cardEvents(card) : [ev]);
  }

  onKey(e) {
    const card = e.target.closest && e.target.closest('.card, .agent-head');
    if (!card) return;
    const laneEl = card.closest('.lane');
    const lane = this.lanes.get(laneEl.dataset.step);
    if (!lane) return;
    let items = lane.focusables();
    let at = items.indexOf(card);
    let target = null;
    switch (e.key) {
      case 'ArrowDown':
        target = items[at + 1] || null;
        if (!target && lane.end < lane.entries.length) {
          lane.pageNewer();
          items = lane.focusables();
          target = items[items.indexOf(card) + 1] || null;
        }
        break;
      case 'ArrowUp':
        target = at > 0 ? items[at - 1] : null;
        if (!target && lane.start > 0) {
          lane.pageOlder(false);
          items = lane.focusables();
          at = items.indexOf(card);
          target = at > 0 ? items[at - 1] : null;
        }
        break;
      case 'Home':
        target = items[0] || null;
        break;
      case 'End':
        target = items[items.length - 1] || null;
        break;
      case 'ArrowLeft':
      case 'ArrowRight': {
        let other =
          e.key === 'ArrowLeft' ? laneEl.previousElementSibling : laneEl.nextElementSibling;
        while (other && !other.querySelector('.card')) {
          other = e.key === 'ArrowLeft' ? other.previousElementSibling : other.nextElementSibling;
        }
        if (other) {
          const ol = this.lanes.get(other.dataset.step);
          const cands = ol ? ol.focusables() : [...other.querySelectorAll('.card')];
          target = nearestCard(cands, card.getBoundingClientRect().top);
        }
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

function freshSeen() {
  return {
    maxId: 0,
    stalled: false,
    run: null,
    steps: new Map(),
    stop: null,
    tools: new Map(),
    agents: new Set(),
  };
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

function formatReplayHash(runId) {
  return `#/runs/${encodeURIComponent(runId)}?replay=1`;
}

// Scrolls the card's own scrolling box (its lane) so that the card is in the middle of it,
// leaving the page where it is.
function scrollIntoLane(card) {
  let box = card.parentElement;
  while (box && box !== document.body) {
    const oy = getComputedStyle(box).overflowY;
    if ((oy === 'auto' || oy === 'scroll') && box.scrollHeight > box.clientHeight) break;
    box = box.parentElement;
  }
  if (!box || box === document.body) return;
  const top = card.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
  box.scrollTop = Math.max(0, top - (box.clientHeight - card.offsetHeight) / 2);
}
