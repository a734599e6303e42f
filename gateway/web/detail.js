// The detail view of one event: every field, the whole event pretty-printed, and a button that
// copies it. A modal <dialog>: Escape closes it and focus goes back to the card.

import {h, replace} from './dom.js';
import {icon} from './icons.js';
import {classify, eventTime, statusLook} from './events.js';
import {fmtDateTime, fmtDuration, parseTs} from './fmt.js';

export class DetailView {
  // dialog: the page's <dialog>; onClose(): called after it closed.
  constructor(dialog, onClose) {
    this.dialog = dialog;
    this.onClose = onClose;
    this.event = null;
    this.returnFocus = null;
    dialog.addEventListener('close', () => {
      const ev = this.event;
      this.event = null;
      const back = this.returnFocus;
      this.returnFocus = null;
      if (back && back.isConnected) back.focus();
      if (ev && this.onClose) this.onClose(ev);
    });
    dialog.addEventListener('click', (e) => {
      // a click on the backdrop closes
      if (e.target === dialog) dialog.close();
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  // Shows ev; from: the element to focus again on close (the card); related: the events the
  // card stands for (a tool call's), offered as tabs when more than one.
  open(ev, from, related) {
    this.event = ev;
    if (from !== undefined || !this.dialog.open) this.returnFocus = from || document.activeElement;
    const group = Array.isArray(related) && related.length > 1 ? related : null;
    const tabs = group
      ? h(
          'div',
          {class: 'detail-related', role: 'group', 'aria-label': 'Events of this tool call'},
          h('span', {class: 'muted'}, 'Tool call:'),
          group.map((e) =>
            h(
              'button',
              {
                type: 'button',
                class: 'chip',
                'aria-pressed': e === ev ? 'true' : 'false',
                dataset: {eventId: e.id},
                on: {click: () => this.open(e, undefined, group)},
              },
              `${e.event_type || e.event || e.type} #${e.id}`,
            ),
          ),
        )
      : null;
    const c = classify(ev);
    const json = JSON.stringify(ev, null, 2);
    const copyMsg = h('span', {class: 'copy-msg', role: 'status', 'aria-live': 'polite'});
    const copyBtn = h(
      'button',
      {type: 'button', class: 'btn', on: {click: () => copy(json, copyMsg)}},
      icon('copy'),
      'Copy JSON',
    );
    const closeBtn = h(
      'button',
      {
        type: 'button',
        class: 'btn icon-btn',
        'aria-label': 'Close',
        title: 'Close (Esc)',
        on: {click: () => this.dialog.close()},
      },
      icon('close'),
    );
    const t = eventTime(ev);
    const rows = [
      ['Event id', ev.id],
      ['Run', ev.adw_id],
      ['Step', ev.step],
      ['Type', ev.type],
      [
        ev.type === 'system' ? 'Event' : 'Event type',
        ev.type === 'system' ? ev.event : ev.event_type,
      ],
      ['Status', ev.status],
      ['Duration', Number.isFinite(ev.duration_ms) ? fmtDuration(ev.duration_ms) : null],
      ['Time', Number.isFinite(t) ? fmtDateTime(t) : null],
      [
        'Received',
        ev.received_at ? `${fmtDateTime(parseTs(ev.received_at))} (${ev.received_at})` : null,
      ],
      ['Event key', ev.event_id],
      ['Subagent', ev.agent_id ? `${ev.agent_type || 'subagent'} (${ev.agent_id})` : null],
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    const dl = h('dl', {class: 'detail-fields'});
    for (const [k, v] of rows) {
      let dd;
      if (k === 'Status') {
        const look = statusLook(v);
        dd = h('dd', {class: `status-${look.cls}`}, icon(look.icon), String(v));
      } else {
        dd = h('dd', null, String(v));
      }
      dl.append(h('dt', null, k), dd);
    }
    replace(
      this.dialog,
      h(
        'div',
        {class: `detail-head kind-${c.kind}`},
        icon(c.kind, c.kindLabel),
        h(
          'h2',
          {id: 'detail-title'},
          c.name || c.kindLabel,
          h('span', {class: 'muted'}, ` #${ev.id}`),
        ),
        closeBtn,
      ),
      h(
        'div',
        {class: 'detail-body'},
        tabs,
        typeof ev.summary === 'string' && ev.summary !== ''
          ? h('p', {class: 'detail-summary'}, ev.summary)
          : null,
        dl,
        h('div', {class: 'detail-json-head'}, h('h3', null, 'Event JSON'), copyMsg, copyBtn),
        h('pre', {class: 'detail-json', tabindex: '0', 'aria-label': 'Event JSON'}, json),
      ),
    );
    if (!this.dialog.open) this.dialog.showModal();
    closeBtn.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}

async function copy(text, msgEl) {
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      ok = true;
    }
  } catch {
    ok = false;
  }
  if (!ok) {
    // plain http on another host: the old way
    const ta = h('textarea', {class: 'sr-only', readonly: true});
    ta.value = text;
    msgEl.parentElement.appendChild(ta); // inside the dialog: the rest of the page is inert
    ta.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
  }
  msgEl.textContent = ok ? 'Copied' : 'Copy failed: select the text and copy it';
  clearTimeout(msgEl._t);
  msgEl._t = setTimeout(() => {
    msgEl.textContent = '';
  }, 2500);
}
