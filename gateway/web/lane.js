// One swimlane: the events of one step, oldest at the top, as entries: a card per event, one
// card per tool call (every event with the same tool_use_id: PreToolUse, ToolUseBlock,
// PostToolUse / PostToolUseFailure / ToolResultBlock) and, for a subagent's events (those
// with an agent_id), one collapsible group holding its cards. Entries are ordered by their
// first event's id; an event joins its entry whatever order the events arrive in.
//
// Only a window of the lane's top-level entries is in the DOM (the newest WINDOW while
// following the tail); scrolling to the top pages older ones in, scrolling back down pages
// newer ones in. Rendering happens in render(), which the run view calls once per animation
// frame for lanes that changed.

import {h, setText} from './dom.js';
import {icon} from './icons.js';
import {
  agentIdOf,
  classify,
  eventTime,
  statusLook,
  summaryText,
  toolOutcome,
  toolTarget,
  toolUseId,
} from './events.js';
import {fmtClock, fmtCost, fmtDateTime, fmtDuration, fmtInt, num} from './fmt.js';

export const WINDOW = 200; // entries kept while following the newest
const PAGE = 200; // entries paged in at a time
const MAX_DOM = 1000; // entries in the DOM at most, whichever way the user scrolls
const GROUP_MAX = 1000; // cards a subagent group shows at most (the newest)
const NEAR = 48; // px from an edge that counts as "at" it

function timeEl(t) {
  return h(
    'time',
    {
      class: 'card-time',
      datetime: Number.isFinite(t) ? new Date(t).toISOString() : null,
      title: fmtDateTime(t),
    },
    fmtClock(t),
  );
}

// A card for one event. Event text only ever goes in as text.
export function makeCard(ev) {
  const c = classify(ev);
  const t = eventTime(ev);
  const summary = summaryText(ev);
  let tool = ev.payload && typeof ev.payload.tool_name === 'string' ? ev.payload.tool_name : null;
  if (tool && (tool === c.name || summary.startsWith(tool))) tool = null; // already said
  const failed = c.kind === 'error';
  return h(
    'button',
    {
      type: 'button',
      class: `card kind-${c.kind}${failed ? ' is-failed' : ''}`,
      dataset: {eventId: ev.id, eventIds: String(ev.id), kind: c.kind},
    },
    h(
      'span',
      {class: 'card-head'},
      icon(c.kind, c.kindLabel),
      h('span', {class: 'card-type'}, c.name || c.kindLabel),
      timeEl(t),
    ),
    h(
      'span',
      {class: 'card-summary'},
      tool ? h('span', {class: 'card-tool'}, tool) : null,
      h('span', {class: 'card-text'}, summary),
    ),
    failed
      ? h('span', {class: 'card-flag'}, icon('error'), ev.status ? String(ev.status) : 'error')
      : null,
  );
}

// The facts of one tool call from its events (sorted by id).
export function toolCall(events) {
  let tool = null,
    target = null,
    error = null,
    first = NaN,
    last = NaN;
  for (const ev of events) {
    const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
    const name =
      typeof p.tool_name === 'string' && p.tool_name
        ? p.tool_name
        : ev.event_type === 'ToolUseBlock' && typeof p.name === 'string'
          ? p.name
          : null;
    if (!tool && name) tool = name;
    const t = eventTime(ev);
    if (Number.isFinite(t)) {
      if (!(first <= t)) first = t;
      if (!(last >= t)) last = t;
    }
  }
  // The target from the call's start (PreToolUse, ToolUseBlock, PermissionRequest), else any.
  const starts = ['PreToolUse', 'ToolUseBlock', 'PermissionRequest'];
  const ordered = [
    ...events.filter((e) => starts.includes(e.event_type)),
    ...events.filter((e) => !starts.includes(e.event_type)),
  ];
  for (const ev of ordered) {
    const tg = toolTarget(tool, ev.summary);
    if (tg) {
      target = tg;
      break;
    }
  }
  const outcome = toolOutcome(events);
  if (outcome === 'failed') {
    for (const ev of events) {
      const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
      if (ev.event_type === 'PostToolUseFailure' && typeof p.error === 'string' && p.error)
        error = p.error;
      else if (ev.event_type === 'ToolResultBlock' && p.is_error === true) {
        const c = p.content;
        if (typeof c === 'string' && c) error = c;
        else if (Array.isArray(c)) {
          const tx = c.find((x) => x && typeof x.text === 'string');
          if (tx) error = tx.text;
        }
        if (!error && typeof ev.summary === 'string') error = ev.summary;
      }
    }
  }
  return {tool: tool || 'Tool', target: target || '', outcome, error, first, last};
}

// One card for a tool call (its events sorted by id). ended: the run has ended, so a call
// without a result has none ("no result", not "running…").
export function makeToolCard(events, tid, ended) {
  const call = toolCall(events);
  const failed = call.outcome === 'failed';
  const running = call.outcome === 'running' && !ended;
  const open = call.outcome === 'running' && ended;
  const ms = call.last - call.first;
  const dur = running ? 'running…' : Number.isFinite(ms) ? fmtDuration(ms) : '–';
  const look = statusLook(open ? 'unknown' : call.outcome);
  const kinds = events.map((e) => e.event_type || e.event || e.type).join(' → ');
  return h(
    'button',
    {
      type: 'button',
      class: `card card-call kind-${failed ? 'error' : 'tool'}${failed ? ' is-failed' : ''}`,
      title: `${kinds} (#${events.map((e) => e.id).join(', #')})`,
      dataset: {
        eventId: events[0].id,
        eventIds: events.map((e) => e.id).join(' '),
        kind: failed ? 'error' : 'tool',
        toolUseId: tid,
        outcome: call.outcome,
      },
    },
    h(
      'span',
      {class: 'card-head'},
      icon('tool', 'Tool call'),
      h('span', {class: 'card-type'}, call.tool),
      timeEl(call.first),
    ),
    call.target
      ? h('span', {class: 'card-summary'}, h('span', {class: 'card-text'}, call.target))
      : null,
    failed && call.error
      ? h('span', {class: 'card-error'}, String(call.error).split('\n')[0].slice(0, 300))
      : null,
    h(
      'span',
      {class: 'card-foot'},
      h(
        'span',
        {class: `card-outcome status-${look.cls}`},
        icon(look.icon),
        running ? 'running…' : failed ? 'failed' : open ? 'no result' : 'ok',
      ),
      running || open ? null : h('span', {class: 'card-dur', dataset: {ms: String(ms)}}, dur),
      h(
        'span',
        {class: 'card-parts muted'},
        `${events.length} event${events.length === 1 ? '' : 's'}`,
      ),
    ),
  );
}

function insertSorted(list, item) {
  let lo = 0,
    hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].id < item.id) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, item);
  return lo;
}

function insertEvent(events, ev) {
  if (!events.length || events[events.length - 1].id < ev.id) events.push(ev);
  else insertSorted(events, ev);
}

// A card: one event, or a tool call's events.
class CardEntry {
  constructor(ev, tid, lane) {
    this.lane = lane;
    this.id = ev.id; // the first event's id: the sort key
    this.tid = tid;
    this.events = [ev];
    this.agentId = agentIdOf(ev);
    this.parent = null; // the Lane or the AgentEntry holding it
    this.el = null;
  }

  add(ev) {
    insertEvent(this.events, ev);
    this.id = this.events[0].id;
    if (!this.agentId) this.agentId = agentIdOf(ev);
  }

  element() {
    if (!this.el)
      this.el = this.tid
        ? makeToolCard(this.events, this.tid, this.lane.ended)
        : makeCard(this.events[0]);
    return this.el;
  }

  // Rebuilds the card (its events changed), in place when it is in the DOM.
  refresh() {
    const old = this.el;
    this.el = null;
    if (!old || !old.isConnected) return;
    const el = this.element();
    const focused = document.activeElement === old;
    old.replaceWith(el);
    if (focused) el.focus({preventScroll: true});
  }
}

// A subagent's group: its cards, under a header with its type, event count, duration and cost.
class AgentEntry {
  constructor(agentId, lane) {
    this.agentId = agentId;
    this.lane = lane;
    this.id = Infinity;
    this.children = []; // CardEntry, sorted by id
    this.events = []; // every event of the agent in this lane
    this.agentType = null;
    this.stopped = false;
    this.cost = 0;
    this.first = NaN;
    this.last = NaN;
    this.open = true;
    this.el = null;
  }

  addEvent(ev) {
    insertEvent(this.events, ev);
    if (ev.id < this.id) this.id = ev.id;
    if (typeof ev.agent_type === 'string' && ev.agent_type) this.agentType = ev.agent_type;
    if (ev.event_type === 'SubagentStop') this.stopped = true;
    const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
    const c = num(p.cost_usd);
    if (Number.isFinite(c) && c >= 0) this.cost += c;
    const t = eventTime(ev);
    if (Number.isFinite(t)) {
      if (!(this.first <= t)) this.first = t;
      if (!(this.last >= t)) this.last = t;
    }
  }

  element() {
    if (this.el) return this.el;
    this.chev = icon('chevron');
    this.typeEl = h('span', {class: 'agent-type'});
    this.statusEl = h('span', {class: 'agent-status'});
    this.countEl = h('span', {class: 'agent-count'});
    this.durEl = h('span', {class: 'agent-dur'});
    this.costEl = h('span', {class: 'agent-cost'});
    this.body = h('div', {class: 'agent-cards', role: 'group'});
    this.more = h('p', {class: 'agent-more muted', hidden: true});
    this.head = h(
      'button',
      {
        type: 'button',
        class: 'agent-head',
        'aria-expanded': 'true',
        on: {click: () => this.toggle()},
      },
      h(
        'span',
        {class: 'agent-title'},
        this.chev,
        icon('agent'),
        this.typeEl,
        this.statusEl,
      ),
      h('span', {class: 'agent-meta'}, this.countEl, this.durEl, this.costEl),
    );
    this.el = h(
      'section',
      {class: 'agent-group', dataset: {agentId: this.agentId}},
      this.head,
      this.more,
      this.body,
    );
    this.setOpen(this.open);
    this.refresh();
    return this.el;
  }

  toggle() {
    this.setOpen(!this.open);
  }

  setOpen(open) {
    this.open = open;
    if (!this.el) return;
    this.el.classList.toggle('is-collapsed', !open);
    this.head.setAttribute('aria-expanded', open ? 'true' : 'false');
    this.body.hidden = !open;
    this.more.hidden = !open || this.children.length <= GROUP_MAX;
  }

  // Updates the header and the cards in place.
  refresh(now = Date.now()) {
    if (!this.el) return;
    const info = this.lane.agentInfo ? this.lane.agentInfo(this.agentId) : null;
    const held = this.events.length;
    const restCount = info && Number.isFinite(info.event_count) ? info.event_count : -1;
    const count = Math.max(held, restCount);
    const restCost = info ? num(info.cost_usd) : NaN;
    const cost = restCount >= held && Number.isFinite(restCost) ? restCost : this.cost;
    const type = this.agentType || (info && info.agent_type) || 'subagent';
    let status = info && typeof info.status === 'string' && info.status ? info.status : 'running';
    if (this.stopped) status = 'completed';
    else if (status === 'running' && this.lane.ended) status = 'ended'; // the run ended first
    let a = this.first,
      b = this.last;
    if (info && restCount >= held) {
      const ra = Date.parse(info.first_ts),
        rb = Date.parse(info.last_ts);
      if (Number.isFinite(ra)) a = ra;
      if (Number.isFinite(rb)) b = rb;
    }
    const ms = status === 'running' && Number.isFinite(a) ? Math.max(0, now - a) : b - a;
    const ds = this.el.dataset;
    ds.agentType = type;
    ds.count = String(count);
    ds.status = status;
    ds.cost = String(cost);
    setText(this.typeEl, type);
    this.typeEl.title = `agent_id ${this.agentId}`;
    const look = statusLook(status);
    if (this.statusEl.dataset.status !== status) {
      this.statusEl.dataset.status = status;
      this.statusEl.className = `agent-status status-${look.cls}`;
      this.statusEl.replaceChildren(icon(look.icon), status);
    }
    setText(this.countEl, `${fmtInt(count)} event${count === 1 ? '' : 's'}`);
    setText(
      this.durEl,
      Number.isFinite(ms) ? `${fmtDuration(ms)}${status === 'running' ? ' so far' : ''}` : '–',
    );
    setText(this.costEl, fmtCost(cost));
    const failed = this.children.some((c) => c.tid && toolOutcome(c.events) === 'failed');
    this.el.classList.toggle('is-failed', failed);
    // The cards: the newest GROUP_MAX, in id order; unchanged elements stay.
    const from = Math.max(0, this.children.length - GROUP_MAX);
    const box = this.body;
    let node = box.firstElementChild;
    for (let i = from; i < this.children.length; i++) {
      const el = this.children[i].element();
      if (node !== el) box.insertBefore(el, node);
      else node = node.nextElementSibling;
    }
    while (node) {
      const next = node.nextElementSibling;
      node.remove();
      node = next;
    }
    if (from) setText(this.more, `${fmtInt(from)} earlier cards of this subagent not shown`);
    this.more.hidden = !this.open || from === 0;
  }

  insert(child) {
    child.parent = this;
    insertSorted(this.children, child);
  }

  remove(child) {
    const i = this.children.indexOf(child);
    if (i >= 0) this.children.splice(i, 1);
  }
}

export class Lane {
  // key: the step ('' for events without one); label: what the header shows.
  constructor(key, label) {
    this.key = key;
    this.count = 0; // events held
    this.entries = []; // top-level entries (cards and subagent groups), sorted by id
    this.tools = new Map(); // tool_use_id -> CardEntry
    this.agents = new Map(); // agent_id -> AgentEntry
    this.changed = new Set(); // entries to refresh with the next render
    this.agentInfo = null; // agent_id -> the agent from GET /api/adws/{id}, or null
    this.ended = false; // the run has ended: calls without a result have none
    this.start = 0; // DOM holds entries[start, end)
    this.end = 0;
    this.following = true;
    this.full = true; // the DOM must be rebuilt
    this.dirty = true;
    this.firstId = Infinity; // the step's first id (orders the lanes)
    this.info = null; // the step from GET /api/adws/{id} (its status as the view knows it)
    this.active = false;

    this.nameEl = h('h3', {class: 'lane-name'}, label);
    this.activeEl = h('span', {class: 'lane-active', hidden: true}, icon('running'), 'Active');
    this.statusEl = h('span', {class: 'lane-status'});
    this.countEl = h('span', {class: 'lane-count'});
    this.durEl = h('span', {class: 'lane-dur'});
    this.olderBtn = h('button', {
      type: 'button',
      class: 'lane-page lane-older',
      hidden: true,
      on: {click: () => this.pageOlder(true)},
    });
    this.newerBtn = h('button', {
      type: 'button',
      class: 'lane-page lane-newer',
      hidden: true,
      on: {click: () => this.jumpNewest(true)},
    });
    this.list = h('div', {class: 'lane-cards', 'aria-label': `${label || 'no step'}: events`});
    this.emptyEl = h('p', {class: 'lane-empty muted', hidden: true}, 'No events shown');
    this.el = h(
      'section',
      {class: 'lane', dataset: {step: key}},
      h(
        'header',
        {class: 'lane-head'},
        h('div', {class: 'lane-title'}, this.nameEl, this.activeEl),
        h('div', {class: 'lane-meta'}, this.statusEl, this.countEl, this.durEl),
      ),
      this.olderBtn,
      this.list,
      this.emptyEl,
      this.newerBtn,
    );
    this.list.addEventListener('scroll', () => this.onScroll(), {passive: true});
  }

  // Adds an event (the caller has deduplicated by id).
  add(ev) {
    this.count += 1;
    if (ev.id < this.firstId) this.firstId = ev.id;
    const agentId = agentIdOf(ev);
    let group = null;
    if (agentId) {
      group = this.agents.get(agentId);
      if (!group) {
        group = new AgentEntry(agentId, this);
        group.addEvent(ev);
        this.agents.set(agentId, group);
        this.insertTop(group);
      } else {
        const before = group.id;
        group.addEvent(ev);
        if (group.id !== before) this.reposition(group);
      }
      this.changed.add(group);
    }
    const tid = toolUseId(ev);
    let entry = tid ? this.tools.get(tid) : null;
    if (entry) {
      const before = entry.id;
      entry.add(ev);
      this.changed.add(entry);
      if (group && entry.parent !== group) {
        // a call first seen without its agent_id: it moves into the subagent's group
        this.detach(entry);
        group.insert(entry);
      } else if (entry.id !== before) {
        if (entry.parent === this) this.reposition(entry);
        else {
          entry.parent.remove(entry);
          entry.parent.insert(entry);
          this.changed.add(entry.parent);
        }
      }
      if (entry.parent !== this) this.changed.add(entry.parent);
    } else {
      entry = new CardEntry(ev, tid, this);
      if (tid) this.tools.set(tid, entry);
      if (group) group.insert(entry);
      else this.insertTop(entry);
    }
    this.dirty = true;
  }

  insertTop(entry) {
    entry.parent = this;
    const a = this.entries;
    let at;
    if (!a.length || a[a.length - 1].id < entry.id) {
      a.push(entry);
      at = a.length - 1;
    } else {
      at = insertSorted(a, entry);
    }
    if (at < this.end) this.full = true; // lands inside or before the rendered window
    if (at < this.start) this.start += 1;
  }

  // Takes a top-level entry out of the list (to re-insert or to move into a group).
  detach(entry) {
    if (entry.parent !== this) {
      entry.parent.remove(entry);
      this.changed.add(entry.parent);
      return;
    }
    const at = this.entries.indexOf(entry);
    if (at < 0) return;
    this.entries.splice(at, 1);
    if (at < this.end) {
      this.full = true;
      if (this.end > 0) this.end -= 1;
    }
    if (at < this.start) this.start -= 1;
    if (entry.el && entry.el.parentElement === this.list) entry.el.remove();
  }

  // A top-level entry whose first id changed moves to its place.
  reposition(entry) {
    if (entry.parent !== this) return;
    this.detach(entry);
    this.insertTop(entry);
    this.full = true;
  }

  setInfo(step, active, now) {
    this.info = step || null;
    this.active = !!active;
    this.dirty = true;
    this.renderHead(now);
  }

  // The run ended (or runs again): the cards of calls without a result follow.
  setEnded(ended) {
    if (this.ended === !!ended) return;
    this.ended = !!ended;
    for (const e of this.tools.values())
      if (toolOutcome(e.events) === 'running') this.changed.add(e);
    for (const g of this.agents.values()) this.changed.add(g);
    this.dirty = true;
  }

  // Once in a while: running subagents' "so far" durations move on.
  tick(now = Date.now()) {
    for (const g of this.agents.values())
      if (g.el && g.el.dataset.status === 'running') g.refresh(now);
    this.renderHead(now);
  }

  // The REST agents changed: the groups' headers follow.
  setAgentInfo(fn) {
    this.agentInfo = fn;
    for (const g of this.agents.values()) this.changed.add(g);
    this.dirty = true;
  }

  renderHead(now = Date.now()) {
    this.activeEl.hidden = !this.active;
    this.el.classList.toggle('is-active', this.active);
    const st = this.info && this.info.status;
    this.el.classList.toggle('is-failed', !!st && statusLook(st).cls === 'failed');
    if (st) {
      const look = statusLook(st);
      if (this.statusEl.dataset.status !== st) {
        this.statusEl.replaceChildren(icon(look.icon), String(st));
        this.statusEl.className = `lane-status status-${look.cls}`;
        this.statusEl.dataset.status = st;
      }
    } else if (this.statusEl.firstChild) {
      this.statusEl.replaceChildren();
      delete this.statusEl.dataset.status;
    }
    const total =
      this.info && Number.isFinite(this.info.event_count) ? this.info.event_count : null;
    const held = this.count;
    setText(
      this.countEl,
      total !== null && total > held
        ? `${fmtInt(held)} of ${fmtInt(total)} events`
        : `${fmtInt(held)} event${held === 1 ? '' : 's'}`,
    );
    this.countEl.dataset.count = String(held);
    setText(this.durEl, stepDuration(this.info, now));
  }

  // Brings the DOM up to date; cheap when nothing changed.
  render(now) {
    if (!this.dirty) return;
    this.dirty = false;
    // Cards whose events changed first (in place), then the groups holding them.
    const groups = [];
    for (const e of this.changed) {
      if (e instanceof AgentEntry) groups.push(e);
      else e.refresh();
    }
    this.changed.clear();
    for (const g of groups) g.refresh(now);
    const n = this.entries.length;
    const list = this.list;
    if (this.full || (this.end === 0 && n > 0)) {
      this.full = false;
      if (this.following || this.end > n) {
        this.end = n;
        this.start = Math.max(0, n - WINDOW);
      } else {
        this.start = Math.min(this.start, Math.max(0, n - 1));
        this.end = Math.max(this.end, Math.min(n, this.start + 1));
      }
      list.replaceChildren(...this.cards(this.start, this.end));
      if (this.following) list.scrollTop = list.scrollHeight;
    } else if (this.following && this.end < n) {
      if (n - this.end > WINDOW) {
        this.start = n - WINDOW;
        list.replaceChildren(...this.cards(this.start, n));
      } else {
        list.append(...this.cards(this.end, n));
        if (n - this.start > WINDOW + PAGE / 2) {
          const drop = n - WINDOW - this.start;
          for (let i = 0; i < drop; i++) list.firstElementChild.remove();
          this.start += drop;
        }
      }
      this.end = n;
      list.scrollTop = list.scrollHeight;
    } else if (this.following && groups.length) {
      list.scrollTop = list.scrollHeight; // a group grew at the bottom
    }
    this.olderBtn.hidden = this.start === 0;
    if (this.start > 0) setText(this.olderBtn, `Show older (${fmtInt(this.start)} more)`);
    const newer = n - this.end;
    this.newerBtn.hidden = newer === 0;
    if (newer) setText(this.newerBtn, `${fmtInt(newer)} newer · jump to newest`);
    this.emptyEl.hidden = this.count !== 0;
    this.renderHead(now);
  }

  cards(from, to) {
    const out = new Array(Math.max(0, to - from));
    for (let i = from; i < to; i++) out[i - from] = this.entries[i].element();
    return out;
  }

  onScroll() {
    const l = this.list;
    if (l.scrollTop < NEAR && this.start > 0) this.pageOlder(false);
    else if (l.scrollTop + l.clientHeight > l.scrollHeight - NEAR) {
      if (this.end < this.entries.length) this.pageNewer();
      else this.following = true;
    } else {
      this.following = false;
    }
  }

  // Prepends up to PAGE older entries, keeping what is on screen where it is.
  pageOlder(focus) {
    if (this.start === 0) return;
    const l = this.list;
    const from = Math.max(0, this.start - PAGE);
    const before = l.scrollHeight;
    const firstOld = l.firstElementChild;
    l.prepend(...this.cards(from, this.start));
    this.start = from;
    l.scrollTop += l.scrollHeight - before;
    this.following = false;
    if (this.end - this.start > MAX_DOM) {
      const drop = this.end - this.start - MAX_DOM;
      for (let i = 0; i < drop; i++) l.lastElementChild.remove();
      this.end -= drop;
    }
    if (focus && firstOld && firstOld.previousElementSibling) {
      const prev = firstOld.previousElementSibling;
      (prev.matches('.card') ? prev : prev.querySelector('.agent-head') || prev).focus();
    }
    this.dirty = true;
    this.render();
  }

  pageNewer() {
    const n = this.entries.length;
    const to = Math.min(n, this.end + PAGE);
    this.list.append(...this.cards(this.end, to));
    this.end = to;
    if (this.end - this.start > MAX_DOM) {
      const l = this.list;
      const before = l.scrollHeight;
      const drop = this.end - this.start - MAX_DOM;
      for (let i = 0; i < drop; i++) l.firstElementChild.remove();
      this.start += drop;
      l.scrollTop -= before - l.scrollHeight;
    }
    this.following = this.end === n;
    this.dirty = true;
    this.render();
  }

  jumpNewest(focus) {
    this.following = true;
    this.full = true;
    this.dirty = true;
    this.render();
    if (focus) {
      const f = this.focusables();
      if (f.length) f[f.length - 1].focus();
    }
  }

  // What the keyboard moves between, in DOM order: cards and group headers that are shown.
  focusables() {
    return [...this.list.querySelectorAll('.card, .agent-head')].filter(
      (el) => !el.closest('.agent-cards[hidden]'),
    );
  }
}

// A running step's time so far, else its duration (as reported, or first to last event).
export function stepDuration(step, now) {
  if (!step) return '';
  const a = Date.parse(step.first_ts),
    b = Date.parse(step.last_ts);
  if (step.status === 'running' && Number.isFinite(a))
    return `${fmtDuration(Math.max(0, now - a))} so far`;
  if (Number.isFinite(step.duration_ms)) return fmtDuration(step.duration_ms);
  return Number.isFinite(a) && Number.isFinite(b) ? fmtDuration(b - a) : '';
}
