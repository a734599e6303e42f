// The gateway's REST read API (proto/websocket.md, "REST"), same origin.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class Api {
  // token: the gateway token from the page URL, or null; sent as a bearer header.
  constructor(token) {
    this.token = token;
  }

  async get(path, params, signal) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === null || v === undefined || v === '') continue;
      if (Array.isArray(v)) {
        if (v.length) q.set(k, v.join(','));
      } else {
        q.set(k, String(v));
      }
    }
    const url = path + (q.toString() ? `?${q}` : '');
    const headers = {Accept: 'application/json'};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const res = await fetch(url, {headers, signal, cache: 'no-store'});
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) {
      const why = body && typeof body.error === 'string' ? body.error : res.statusText;
      throw new ApiError(res.status, `${res.status} ${why}`);
    }
    return body;
  }

  // -> [run, ...], most recently active first.
  async runs({status, limit = 200} = {}, signal) {
    const body = await this.get('/api/adws', {status, limit}, signal);
    return Array.isArray(body && body.adws) ? body.adws : [];
  }

  // -> the run with its steps; ApiError with status 404 when there is no such run.
  async run(adwId, signal) {
    return this.get(`/api/adws/${encodeURIComponent(adwId)}`, null, signal);
  }

  // One page of events: -> {events, next_since, complete, first_id} (complete false: events
  // after `since` were dropped; first_id is the first one kept).
  async events(filters, since, limit, signal) {
    const body = await this.get(
      '/api/events',
      {
        adw_id: filters.adw_id,
        steps: filters.steps,
        event_types: filters.event_types,
        types: filters.types,
        since,
        limit,
      },
      signal,
    );
    const events = Array.isArray(body && body.events) ? body.events : [];
    let next = Number(body && body.next_since);
    if (!Number.isFinite(next)) next = events.length ? events[events.length - 1].id : since;
    const complete = !(body && body.complete === false);
    return {events, next_since: next, complete, first_id: complete ? 0 : Number(body.first_id)};
  }
}
