// A small live activity chart: events per second over the last few minutes, drawn on a
// <canvas> once a second. Counts are kept per whole second of the event's received_at,
// shifted by the clock difference seen on live events so that the right edge is "now".

import {h} from './dom.js';

export class ActivityChart {
  constructor({seconds = 300, label = 'Activity'} = {}) {
    this.seconds = seconds;
    this.counts = new Map(); // epoch second -> events
    this.skew = null; // browser clock minus server clock, ms, from live events
    this.canvas = h('canvas', {class: 'chart-canvas', role: 'img', 'aria-label': label});
    this.caption = h('p', {class: 'chart-caption muted'});
    this.el = h('figure', {class: 'chart'}, this.canvas, this.caption);
    this.timer = setInterval(() => this.draw(), 1000);
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this.canvas);
  }

  // receivedMs: the event's received_at in ms; live: it just arrived (feeds the skew).
  add(receivedMs, live) {
    if (!Number.isFinite(receivedMs)) return;
    if (live) {
      const d = Date.now() - receivedMs;
      this.skew = this.skew === null ? d : Math.min(this.skew, d);
    }
    const sec = Math.floor(receivedMs / 1000);
    this.counts.set(sec, (this.counts.get(sec) || 0) + 1);
  }

  // After a batch of events: draws now, or soon when it drew events less than 250 ms ago.
  scheduleDraw() {
    if (this.soon) return;
    const wait = this.lastTotal ? 250 - (performance.now() - (this.drawnAt || 0)) : 0;
    if (wait <= 0) {
      this.draw();
      return;
    }
    this.soon = setTimeout(() => {
      this.soon = 0;
      this.draw();
    }, wait);
  }

  // Replay: the right edge is this time (ms) instead of now; null: now again.
  setNow(ms) {
    this.nowMs = ms;
    this.scheduleDraw();
  }

  clear() {
    this.counts.clear();
    this.draw();
  }

  destroy() {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.ro.disconnect();
  }

  draw() {
    this.drawnAt = performance.now();
    const c = this.canvas;
    if (!c.isConnected) return;
    const w = c.clientWidth,
      hgt = c.clientHeight;
    if (!w || !hgt) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const now = Math.floor(
      (Number.isFinite(this.nowMs) ? this.nowMs : Date.now() - (this.skew || 0)) / 1000,
    );
    const first = now - this.seconds + 1;
    for (const k of this.counts.keys()) if (k < first - 60) this.counts.delete(k);
    let peak = 0,
      total = 0;
    const vals = new Array(this.seconds);
    for (let i = 0; i < this.seconds; i++) {
      const v = this.counts.get(first + i) || 0;
      vals[i] = v;
      total += v;
      if (v > peak) peak = v;
    }
    const style = getComputedStyle(c);
    const bar = style.getPropertyValue('--chart-bar').trim() || '#3b82f6';
    const grid = style.getPropertyValue('--chart-grid').trim() || 'rgba(127,127,127,.3)';
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, hgt - 0.5);
    ctx.lineTo(w, hgt - 0.5);
    for (let m = 1; m * 60 < this.seconds; m++) {
      // a tick per minute
      const x = Math.round(w - (m * 60 * w) / this.seconds) + 0.5;
      ctx.moveTo(x, hgt);
      ctx.lineTo(x, hgt - 4);
    }
    ctx.stroke();
    if (peak > 0) {
      const top = niceMax(peak);
      const bw = w / this.seconds;
      ctx.fillStyle = bar;
      for (let i = 0; i < this.seconds; i++) {
        if (!vals[i]) continue;
        const bh = Math.max(1, (vals[i] / top) * (hgt - 2));
        ctx.fillRect(i * bw, hgt - 1 - bh, Math.max(1, bw - (bw > 2 ? 0.5 : 0)), bh);
      }
    }
    this.lastTotal = total;
    this.el.dataset.total = String(total);
    const last = vals.slice(-10).reduce((a, b) => a + b, 0) / 10;
    const text = `${fmtRate(last)}/s now · peak ${peak}/s · ${total} events in ${this.seconds / 60} min`;
    if (this.caption.textContent !== text) {
      this.caption.textContent = text;
      c.setAttribute('aria-label', `Events per second, last ${this.seconds / 60} minutes: ${text}`);
    }
  }
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return v;
}

function fmtRate(r) {
  return r >= 10 ? String(Math.round(r)) : r.toFixed(1).replace(/\.0$/, '');
}
