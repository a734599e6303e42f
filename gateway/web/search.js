// The search box in the header: GET /api/search (the events whose summary, tool name or
// target hold every word, newest first), a list of hits (summary, run, step, time), "More"
// for the next page (next_before). A hit opens its event in its run (#/runs/ID?event=N).

import {h, setText} from './dom.js';
import {fmtDateTime, fmtWhen, parseTs} from './fmt.js';

const LIMIT = 20;
const DEBOUNCE_MS = 250;

export class SearchBox {
  // root: the header's element for it; api: Api; navigate(route): the app's.
  constructor(root, {api, navigate}) {
    this.api = api;
    this.navigate = navigate;
    this.q = '';
    this.input = h('input', {
      type: 'search',
      class: 'search-input',
      placeholder: 'Search events',
      'aria-label': 'Search events (summary, tool, target)',
      autocomplete: 'off',
      maxlength: '256',
    });
    this.list = h('div', {class: 'search-list'});
    this.status = h('p', {class: 'search-empty', role: 'status'});
    this.moreBtn = h(
      'button',
      {type: 'button', class: 'btn btn-small search-more', hidden: true, on: {click: () => this.more()}},
      'More',
    );
    this.results = h(
      'div',
      {class: 'search-results', hidden: true, 'aria-label': 'Search results'},
      this.status,
      this.list,
      this.moreBtn,
    );
    this.form = h(
      'form',
      {class: 'search-form', role: 'search', on: {submit: (e) => this.onSubmit(e)}},
      this.input,
    );
    root.replaceChildren(this.form, this.results);
    this.input.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(this.input.value), DEBOUNCE_MS);
    });
    this.input.addEventListener('focus', () => {
      if (this.q) this.results.hidden = false;
    });
    root.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        this.close();
        this.input.focus();
      }
    });
    document.addEventListener('click', (e) => {
      if (!root.contains(e.target)) this.close();
    });
  }

  onSubmit(e) {
    e.preventDefault();
    clearTimeout(this.timer);
    this.search(this.input.value, true);
  }

  close() {
    this.results.hidden = true;
  }

  async search(text, force) {
    const q = String(text || '').trim();
    if (!q) {
      this.q = '';
      this.close();
      return;
    }
    if (q === this.q && !force) return;
    this.q = q;
    this.list.replaceChildren();
    this.results.hidden = false;
    this.results.dataset.state = 'loading';
    setText(this.status, 'Searching…');
    this.status.hidden = false;
    this.moreBtn.hidden = true;
    await this.page(q, null);
  }

  async more() {
    if (this.next === null || this.next === undefined) return;
    this.moreBtn.disabled = true;
    await this.page(this.q, this.next);
    this.moreBtn.disabled = false;
  }

  async page(q, before) {
    if (this.abort) this.abort.abort();
    const abort = (this.abort = new AbortController());
    let body;
    try {
      body = await this.api.get('/api/search', {q, limit: LIMIT, before}, abort.signal);
    } catch (e) {
      if (e.name === 'AbortError' || q !== this.q) return;
      this.results.dataset.state = 'error';
      setText(this.status, `Search failed: ${e.message}`);
      this.status.hidden = false;
      return;
    }
    if (q !== this.q) return;
    const events = Array.isArray(body && body.events) ? body.events : [];
    for (const ev of events) this.list.append(this.hit(ev));
    const next = body ? Number(body.next_before) : NaN;
    this.next = body && body.next_before !== null && Number.isFinite(next) ? next : null;
    this.moreBtn.hidden = this.next === null;
    const n = this.list.childElementCount;
    const more = this.next !== null ? '+' : '';
    setText(this.status, n ? `${n}${more} event${n === 1 && !more ? '' : 's'}` : 'No events match.');
    this.status.hidden = false;
    this.results.dataset.state = 'done';
  }

  hit(ev) {
    const when = parseTs(ev.received_at);
    const summary =
      (typeof ev.summary === 'string' && ev.summary) || ev.event_type || ev.event || ev.type;
    return h(
      'button',
      {
        type: 'button',
        class: 'search-hit',
        dataset: {eventId: String(ev.id), adwId: String(ev.adw_id)},
        on: {
          click: () => {
            this.close();
            this.navigate({
              view: 'run',
              runId: ev.adw_id,
              filters: {steps: [], event_types: [], types: []},
              eventId: ev.id,
            });
          },
        },
      },
      h('span', {class: 'search-hit-summary'}, String(summary || '')),
      h(
        'span',
        {class: 'search-hit-meta', title: fmtDateTime(when)},
        `${ev.adw_id}${ev.step ? ` · ${ev.step}` : ''} · ${fmtWhen(when)}`,
      ),
    );
  }
}
