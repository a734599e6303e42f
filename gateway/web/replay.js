// Replay of a stored run (#/runs/ID?replay=1): a playhead over the run's time (the events'
// own timestamps) that hands the run view the events up to it. Play and pause, a speed (1x to
// 60x: simulated seconds per real second), "skip idle" (a gap over 2 s between events is
// shortened to 0.5 s) and a scrubber. The events come from GET /api/events in pages (limit
// 1000, next_since), fetched as the playhead comes near the end of what is held, never all
// at once. Moving the playhead back rebuilds the view from the events up to it.

import {h, setText} from './dom.js';
import {icon} from './icons.js';
import {eventTime} from './events.js';
import {fmtDuration, parseTs} from './fmt.js';

const PAGE_LIMIT = 1000;
const AHEAD = 300; // fetch the next page when fewer events than this are held past the playhead
const TICK_MS = 50;
const IDLE_GAP_MS = 2000;
const IDLE_SHOWN_MS = 500;
export const SPEEDS = [1, 2, 5, 10, 30, 60];

export class Replay {
  // view: the run view; it is handed the events with view.replayShow(events, rebuild).
  constructor(view) {
    this.view = view;
    this.events = [];
    this.times = []; // each event's time, ms, never decreasing
    this.since = 0;
    this.done = false;
    this.fetching = null;
    this.t0 = NaN;
    this.endHint = NaN; // the run's last_ts from REST
    this.at = 0; // the playhead: ms after t0
    this.shown = 0; // events handed to the view
    this.playing = true;
    this.speed = 1;
    this.skipIdle = false;
    this.build();
    this.last = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.fetchMore().then(() => this.tick());
  }

  destroy() {
    clearInterval(this.timer);
    this.destroyed = true;
    if (this.abort) this.abort.abort();
  }

  setEndHint(run) {
    const t = run ? parseTs(run.last_ts) : NaN;
    if (Number.isFinite(t)) this.endHint = t;
    this.render();
  }

  // The run's length: to its last event's time once all are held, else the larger of what
  // REST says and what is held.
  span() {
    if (!Number.isFinite(this.t0)) return 0;
    const held = this.times.length ? this.times[this.times.length - 1] : this.t0;
    if (this.done) return held - this.t0;
    return Math.max(held, Number.isFinite(this.endHint) ? this.endHint : held) - this.t0;
  }

  // One page more; resolves when it is in (one request at a time).
  fetchMore() {
    if (this.done || this.destroyed) return Promise.resolve();
    if (this.fetching) return this.fetching;
    this.abort = new AbortController();
    this.fetching = (async () => {
      try {
        const page = await this.view.ctx.api.events(
          this.view.serverFilters(),
          this.since,
          PAGE_LIMIT,
          this.abort.signal,
        );
        if (this.destroyed) return;
        for (const ev of page.events) {
          const t = eventTime(ev);
          const prev = this.times.length ? this.times[this.times.length - 1] : -Infinity;
          const tt = Number.isFinite(t) ? Math.max(t, prev) : prev;
          if (!Number.isFinite(this.t0)) this.t0 = Number.isFinite(tt) ? tt : Date.now();
          this.events.push(ev);
          this.times.push(Number.isFinite(tt) ? tt : this.t0);
        }
        const last = page.events.length ? page.events[page.events.length - 1].id : this.since;
        const next = Math.max(Number(page.next_since) || 0, last);
        if (page.events.length < PAGE_LIMIT || next <= this.since) this.done = true;
        this.since = next;
        this.view.root.firstElementChild.dataset.replayLoaded = String(this.events.length);
      } catch (e) {
        if (this.destroyed || e.name === 'AbortError') return;
        this.view.showError(`Replay: loading events failed (${e.message}).`);
        await new Promise((r) => setTimeout(r, 2000));
      } finally {
        this.fetching = null;
      }
    })();
    return this.fetching;
  }

  tick() {
    if (this.destroyed) return;
    const now = performance.now();
    const dt = now - this.last;
    this.last = now;
    if (this.playing && this.done && !this.events.length) {
      this.playing = false; // nothing to play
      this.ended = true;
    }
    if (this.playing && Number.isFinite(this.t0)) {
      let at = this.at + dt * this.speed;
      const next = this.shown < this.times.length ? this.times[this.shown] : NaN;
      if (this.skipIdle && Number.isFinite(next)) {
        const prev = this.shown > 0 ? this.times[this.shown - 1] : this.t0;
        if (next - prev > IDLE_GAP_MS) at = Math.max(at, next - IDLE_SHOWN_MS - this.t0);
      }
      // Never past what is held while more is to come.
      if (!this.done) {
        const held = this.times.length ? this.times[this.times.length - 1] - this.t0 : 0;
        at = Math.min(at, held);
      }
      this.at = Math.min(at, this.span());
      if (this.done && this.shown >= this.events.length && this.at >= this.span()) {
        this.playing = false;
        this.ended = true;
      }
    }
    this.apply();
    if (!this.done && this.events.length - this.shown < AHEAD) this.fetchMore();
    this.render();
  }

  // Hands the view what the playhead passed (or rebuilds it when the playhead went back).
  apply() {
    const limit = this.t0 + this.at;
    let j = 0;
    if (this.shown > 0 && this.times[this.shown - 1] <= limit) j = this.shown;
    while (j < this.events.length && this.times[j] <= limit) j++;
    if (j === this.shown) return;
    if (j < this.shown) this.view.replayShow(this.events.slice(0, j), true);
    else this.view.replayShow(this.events.slice(this.shown, j), false);
    this.shown = j;
  }

  async seek(at) {
    const target = Math.max(0, at);
    this.ended = false;
    while (!this.done && !this.destroyed) {
      const held = this.times.length ? this.times[this.times.length - 1] - this.t0 : -1;
      if (held >= target) break;
      await this.fetchMore();
    }
    if (this.destroyed) return;
    this.at = Math.min(target, this.span());
    this.last = performance.now();
    this.apply();
    this.render();
  }

  build() {
    const go = (e) => {
      e.preventDefault();
      this.view.leaveReplay();
    };
    this.playBtn = h('button', {
      type: 'button',
      class: 'btn replay-play',
      on: {
        click: () => {
          if (this.ended) {
            this.ended = false;
            this.seek(0);
          }
          this.playing = !this.playing;
          this.last = performance.now();
          this.render();
        },
      },
    });
    this.speedSel = h(
      'select',
      {
        class: 'replay-speed',
        'aria-label': 'Speed',
        on: {
          change: () => {
            this.speed = Number(this.speedSel.value) || 1;
          },
        },
      },
      ...SPEEDS.map((s) => h('option', {value: String(s)}, `${s}x`)),
    );
    this.idleBox = h('input', {
      type: 'checkbox',
      class: 'replay-skip',
      on: {
        change: () => {
          this.skipIdle = this.idleBox.checked;
        },
      },
    });
    this.scrub = h('input', {
      type: 'range',
      class: 'replay-scrub',
      min: '0',
      max: '0',
      step: '1',
      value: '0',
      'aria-label': 'Playhead',
      on: {
        input: () => this.seek(Number(this.scrub.value)),
        pointerdown: () => {
          this.dragging = true;
        },
        pointerup: () => {
          this.dragging = false;
        },
        change: () => {
          this.dragging = false;
        },
      },
    });
    this.timeEl = h('span', {class: 'replay-time muted'});
    this.el = h(
      'div',
      {class: 'replay-bar', role: 'group', 'aria-label': 'Replay'},
      h('span', {class: 'badge status-other'}, icon('running'), 'Replay'),
      this.playBtn,
      h('label', {class: 'replay-field'}, 'Speed ', this.speedSel),
      h('label', {class: 'replay-field'}, this.idleBox, ' Skip idle'),
      this.scrub,
      this.timeEl,
      h('a', {class: 'btn btn-quiet replay-leave', href: '#', on: {click: go}}, 'Back to live'),
    );
  }

  render() {
    const span = Math.max(0, Math.round(this.span()));
    const at = Math.round(this.at);
    setText(this.playBtn, this.playing ? 'Pause' : this.ended ? 'Play again' : 'Play');
    this.playBtn.setAttribute('aria-pressed', this.playing ? 'true' : 'false');
    if (this.scrub.max !== String(span)) this.scrub.max = String(span);
    if (!this.dragging) this.scrub.value = String(at);
    setText(this.timeEl, `${fmtClock(at)} / ${fmtClock(span)}`);
    this.timeEl.title = fmtDuration(at);
    const ds = this.el.dataset;
    ds.state = this.playing ? 'playing' : this.ended ? 'ended' : 'paused';
    ds.at = String(at);
    ds.span = String(span);
    ds.shown = String(this.shown);
    if (Number.isFinite(this.t0)) this.view.chart.setNow(this.t0 + this.at);
  }
}

function fmtClock(ms) {
  const s = Math.floor(ms / 1000);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
