// Desktop notifications (opt-in): a toggle in the header asks for the permission on click;
// while on, a WebSocket of its own takes the live system events adw_failed, run_stalled,
// budget_exceeded and approval_requested of every run and shows one notification per event.
// Clicking one focuses the page on the run. The choice is kept in localStorage.

import {h, setText} from './dom.js';
import {Connection} from './conn.js';

export const ALERT_EVENTS = ['adw_failed', 'run_stalled', 'budget_exceeded', 'approval_requested'];
const KEY = 'adw.notifications';

const TITLES = {
  adw_failed: (r) => `Run ${r} failed`,
  run_stalled: (r) => `Run ${r} stalled`,
  budget_exceeded: (r) => `Run ${r} is over its budget`,
  approval_requested: (r) => `Run ${r} waits for an approval`,
};

export class Notifier {
  // root: the header's element for the toggle; wsUrl: the events WebSocket's URL;
  // navigate(route): the app's.
  constructor(root, {wsUrl, navigate}) {
    this.wsUrl = wsUrl;
    this.navigate = navigate;
    this.seen = new Set();
    this.cursor = null;
    this.on = false;
    this.btn = h('button', {
      type: 'button',
      class: 'btn btn-small notify-toggle',
      on: {click: () => this.toggle()},
    });
    root.replaceChildren(this.btn);
    const supported = typeof window.Notification === 'function';
    this.btn.hidden = !supported;
    if (supported && localStorage.getItem(KEY) === '1' && Notification.permission === 'granted')
      this.enable();
    this.render();
  }

  async toggle() {
    if (this.on) {
      this.on = false;
      localStorage.removeItem(KEY);
      if (this.conn) this.conn.subscribe(null);
      this.render();
      return;
    }
    let perm = Notification.permission;
    if (perm !== 'granted') {
      try {
        perm = await Notification.requestPermission();
      } catch {
        perm = 'denied';
      }
    }
    if (perm !== 'granted') {
      this.btn.title = 'Notifications are blocked for this page (browser settings)';
      this.render();
      return;
    }
    localStorage.setItem(KEY, '1');
    this.enable();
    this.render();
  }

  enable() {
    this.on = true;
    if (!this.conn) {
      this.conn = new Connection(this.wsUrl);
      this.conn.start();
    }
    this.conn.subscribe({
      filters: {types: ['system'], event_types: ALERT_EVENTS},
      // Live only at first; after a reconnect, what came meanwhile (from the last one seen).
      since: () => this.cursor,
      onEvent: (ev) => this.onEvent(ev),
      onSubscribed: () => {
        this.btn.dataset.subscribed = 'yes';
      },
    });
  }

  onEvent(ev) {
    if (!this.on || !ALERT_EVENTS.includes(ev.event) || this.seen.has(ev.id)) return;
    this.seen.add(ev.id);
    if (this.cursor === null || ev.id > this.cursor) this.cursor = ev.id;
    const title = TITLES[ev.event](ev.adw_id);
    const body = [ev.step ? `step ${ev.step}` : '', typeof ev.summary === 'string' ? ev.summary : '']
      .filter(Boolean)
      .join(': ');
    let n;
    try {
      n = new Notification(title, {body, tag: `adw-event-${ev.id}`});
    } catch (e) {
      console.warn('notification:', e);
      return;
    }
    n.onclick = () => {
      window.focus();
      this.navigate({
        view: 'run',
        runId: ev.adw_id,
        filters: {steps: [], event_types: [], types: []},
        eventId: null,
      });
      n.close();
    };
  }

  render() {
    setText(this.btn, this.on ? 'Alerts on' : 'Alerts off');
    this.btn.setAttribute('aria-pressed', this.on ? 'true' : 'false');
    if (this.on) this.btn.title = 'Desktop notifications for failed, stalled, over-budget and waiting runs';
    else if (!this.btn.title.startsWith('Notifications are blocked'))
      this.btn.title = 'Turn on desktop notifications';
  }
}
