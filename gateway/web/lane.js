// One swimlane: the events of one step, in id order, oldest at the top. Only a window of the
// lane's events is in the DOM (the newest WINDOW while following the tail); scrolling to the
// top pages older cards in, scrolling back down pages newer ones in. Rendering happens in
// render(), which the run view calls once per animation frame for lanes that changed.

import {h, setText} from './dom.js';
import {icon} from './icons.js';
import {classify, eventTime, statusLook, summaryText} from './events.js';
import {fmtClock, fmtDateTime, fmtDuration, fmtInt} from './fmt.js';

export const WINDOW = 200; // cards kept while following the newest
const PAGE = 200; // cards paged in at a time
const MAX_DOM = 1000; // cards in the DOM at most, whichever way the user scrolls
const NEAR = 48; // px from an edge that counts as "at" it

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
      dataset: {eventId: ev.id, kind: c.kind},
    },
    h(
      'span',
      {class: 'card-head'},
      icon(c.kind, c.kindLabel),
      h('span', {class: 'card-type'}, c.name || c.kindLabel),
      h(
        'time',
        {
          class: 'card-time',
          datetime: Number.isFinite(t) ? new Date(t).toISOString() : null,
          title: fmtDateTime(t),
        },
        fmtClock(t),
      ),
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

export class Lane {
  // key: the step ('' for events without one); label: what the header shows.
  constructor(key, label) {
    this.key = key;
    this.events = []; // sorted by id
    this.start = 0; // DOM holds cards for events[start, end)
    this.end = 0;
    this.following = true;
    this.full = true; // the DOM must be rebuilt
    this.dirty = true;
    this.firstId = Infinity; // the step's first id (orders the lanes)
    this.info = null; // the step from GET /api/adws/{id}
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
    const a = this.events;
    if (ev.id < this.firstId) this.firstId = ev.id;
    if (!a.length || a[a.length - 1].id < ev.id) {
      a.push(ev);
    } else {
      let lo = 0,
        hi = a.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (a[mid].id < ev.id) lo = mid + 1;
        else hi = mid;
      }
      a.splice(lo, 0, ev);
      if (lo < this.end) this.full = true; // lands inside or before the rendered window
      if (lo < this.start) this.start += 1;
    }
    this.dirty = true;
  }

  setInfo(step, active, now) {
    this.info = step || null;
    this.active = !!active;
    this.dirty = true;
    this.renderHead(now);
  }

  renderHead(now = Date.now()) {
    this.activeEl.hidden = !this.active;
    this.el.classList.toggle('is-active', this.active);
    const st = this.info && this.info.status;
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
    const held = this.events.length;
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
    const n = this.events.length;
    const list = this.list;
    if (this.full || (this.end === 0 && n > 0)) {
      this.full = false;
      if (this.following || this.end > n) {
        this.end = n;
        this.start = Math.max(0, n - WINDOW);
      } else {
        this.start = Math.min(this.start, Math.max(0, n - 1));
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
    }
    this.olderBtn.hidden = this.start === 0;
    if (this.start > 0) setText(this.olderBtn, `Show older (${fmtInt(this.start)} more)`);
    const newer = n - this.end;
    this.newerBtn.hidden = newer === 0;
    if (newer) setText(this.newerBtn, `${fmtInt(newer)} newer · jump to newest`);
    this.emptyEl.hidden = n !== 0;
    this.renderHead(now);
  }

  cards(from, to) {
    const out = new Array(Math.max(0, to - from));
    for (let i = from; i < to; i++) out[i - from] = makeCard(this.events[i]);
    return out;
  }

  onScroll() {
    const l = this.list;
    if (l.scrollTop < NEAR && this.start > 0) this.pageOlder(false);
    else if (l.scrollTop + l.clientHeight > l.scrollHeight - NEAR) {
      if (this.end < this.events.length) this.pageNewer();
      else this.following = true;
    } else {
      this.following = false;
    }
  }

  // Prepends up to PAGE older cards, keeping what is on screen where it is.
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
    if (focus && firstOld && firstOld.previousElementSibling)
      firstOld.previousElementSibling.focus();
    this.dirty = true;
    this.render();
  }

  pageNewer() {
    const n = this.events.length;
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
    if (focus && this.list.lastElementChild) this.list.lastElementChild.focus();
  }

  // The card elements in DOM order.
  cardEls() {
    return this.list.children;
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
