// The view's state in the URL hash, so that a link reopens the same view:
//   #/                                   the run list
//   #/?status=failed                     the run list, one status
//   #/runs/<adw_id>?step=build&step=fix&type=ToolUseBlock&kind=adw_event&event=1042
//                                        a run, its filters, and the event open in detail
//   #/runs/<adw_id>?replay=1             the run played back from its first event
// The page's own query string (?token=...) is left alone.

export function parseRoute(hash) {
  let s = String(hash || '').replace(/^#/, '');
  if (!s.startsWith('/')) s = `/${s}`;
  const qi = s.indexOf('?');
  const path = qi < 0 ? s : s.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : s.slice(qi + 1));
  const m = /^\/runs\/([^/]+)\/?$/.exec(path);
  if (m) {
    let runId;
    try {
      runId = decodeURIComponent(m[1]);
    } catch {
      runId = m[1];
    }
    const event = Number(q.get('event'));
    return {
      view: 'run',
      runId,
      filters: {
        steps: uniq(q.getAll('step')),
        event_types: uniq(q.getAll('type')),
        types: uniq(q.getAll('kind')),
      },
      eventId: Number.isSafeInteger(event) && event > 0 ? event : null,
      replay: q.get('replay') === '1',
    };
  }
  return {view: 'list', status: q.get('status') || ''};
}

export function formatRoute(r) {
  const q = new URLSearchParams();
  if (r.view === 'run') {
    for (const v of r.filters?.steps || []) q.append('step', v);
    for (const v of r.filters?.event_types || []) q.append('type', v);
    for (const v of r.filters?.types || []) q.append('kind', v);
    if (r.eventId) q.set('event', String(r.eventId));
    if (r.replay) q.set('replay', '1');
    const qs = q.toString();
    return `#/runs/${encodeURIComponent(r.runId)}${qs ? `?${qs}` : ''}`;
  }
  if (r.status) q.set('status', r.status);
  const qs = q.toString();
  return `#/${qs ? `?${qs}` : ''}`;
}

export function sameFilters(a, b) {
  const eq = (x, y) => x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.steps, b.steps) && eq(a.event_types, b.event_types) && eq(a.types, b.types);
}

function uniq(list) {
  return [...new Set(list.filter((v) => v !== ''))];
}
