// Formatting of numbers, money, durations and times for display. Pure functions.

const intFmt = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});

export function fmtInt(n) {
  return Number.isFinite(n) ? intFmt.format(n) : '–';
}

// 1234 -> "1.2K", 2500000 -> "2.5M"; small numbers in full.
export function fmtCompact(n) {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 10000) return intFmt.format(n);
  if (a < 1e6) return `${trim1(n / 1e3)}K`;
  if (a < 1e9) return `${trim1(n / 1e6)}M`;
  return `${trim1(n / 1e9)}B`;
}

function trim1(x) {
  return (Math.round(x * 10) / 10).toFixed(Math.abs(x) >= 100 ? 0 : 1).replace(/\.0$/, '');
}

// US dollars: four decimals below a dollar, two above.
export function fmtCost(n) {
  if (!Number.isFinite(n)) return '–';
  if (n === 0) return '$0.00';
  return `$${n.toFixed(Math.abs(n) < 1 ? 4 : 2)}`;
}

// Milliseconds -> "850 ms", "12.4 s", "3m 05s", "2h 07m", "3d 04h".
export function fmtDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad2(Math.floor(s % 60))}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${pad2(m % 60)}m`;
  return `${Math.floor(hr / 24)}d ${pad2(hr % 24)}h`;
}

// Milliseconds since something happened -> "just now", "12 s ago", "5 min ago", ...
export function fmtAge(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ago`;
  return `${Math.floor(hr / 24)} d ago`;
}

function pad2(n) {
  return String(n).padStart(2, '0');
}

// RFC 3339 -> milliseconds since the epoch, or NaN. Fractions beyond milliseconds are dropped.
export function parseTs(s) {
  if (typeof s !== 'string' || !s) return NaN;
  return Date.parse(s);
}

// Local wall-clock time "14:30:05" (with ".123" when ms is asked for).
export function fmtClock(ms, withMs = false) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const base = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return withMs ? `${base}.${String(d.getMilliseconds()).padStart(3, '0')}` : base;
}

// "14:30:05" when it is today, else "2026-01-01 14:30".
export function fmtWhen(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms),
    now = new Date();
  if (d.toDateString() === now.toDateString()) return fmtClock(ms);
  return fmtDateTime(ms).slice(0, 16);
}

// Local date and time "2026-01-01 14:30:05".
export function fmtDateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${fmtClock(ms)}`;
}

// A number from a JSON value that may be absent, null or a numeric string.
export function num(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : NaN;
  }
  return NaN;
}
