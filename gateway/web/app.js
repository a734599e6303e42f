// Entry point: the connection indicator, the router (URL hash -> view) and the views' shared
// context. Served as is: ES modules, no build step.

import {h, replace, setText} from './dom.js';
import {icon} from './icons.js';
import {Api} from './api.js';
import {Connection} from './conn.js';
import {DetailView} from './detail.js';
import {RunListView} from './runlist.js';
import {RunView} from './runview.js';
import {SearchBox} from './search.js';
import {Notifier} from './notify.js';
import {formatRoute, parseRoute, sameFilters} from './route.js';

const token = new URLSearchParams(location.search).get('token');
const wsUrl = new URL('/ws/events', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
wsUrl.search = token ? `?token=${encodeURIComponent(token)}` : '';
wsUrl.hash = '';

const conn = new Connection(wsUrl.toString());
const api = new Api(token);
const viewRoot = document.getElementById('view');
const crumbs = document.getElementById('crumbs');
let view = null;
let route = null;

const detail = new DetailView(document.getElementById('detail'), () => {
  if (view && view.detailClosed) view.detailClosed();
});

// Changes the URL to describe `r`. opts.replace: no new history entry; opts.silent: the view
// already shows it (no re-route).
function navigate(r, opts = {}) {
  const hash = formatRoute(r);
  if (hash === location.hash) return;
  if (opts.replace || opts.silent) {
    history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
    if (!opts.silent) onRoute();
    else route = parseRoute(hash);
  } else {
    location.hash = hash; // hashchange routes
  }
}

const ctx = {api, conn, navigate, detail};

function onRoute() {
  const next = parseRoute(location.hash);
  const prev = route;
  route = next;
  if (
    view &&
    prev &&
    prev.view === next.view &&
    (next.view === 'list' ||
      (prev.runId === next.runId &&
        prev.replay === next.replay &&
        (!next.replay || sameFilters(prev.filters, next.filters))))
  ) {
    view.update(next);
    return;
  }
  detail.close();
  if (view) view.destroy();
  view =
    next.view === 'run' ? new RunView(viewRoot, ctx, next) : new RunListView(viewRoot, ctx, next);
  renderCrumbs(next);
  document.title = next.view === 'run' ? `${next.runId} · ADW swimlanes` : 'Runs · ADW swimlanes';
  if (prev) viewRoot.focus({preventScroll: true});
}

function renderCrumbs(r) {
  if (r.view === 'run') {
    replace(
      crumbs,
      h('a', {href: '#/'}, 'Runs'),
      h('span', {'aria-hidden': 'true'}, ' / '),
      h('span', {'aria-current': 'page'}, r.runId),
    );
  } else {
    replace(crumbs, h('span', {'aria-current': 'page'}, 'Runs'));
  }
}

// ---- connection indicator -------------------------------------------------------------------

const connEl = document.getElementById('conn');
const connIcon = h('span', {class: 'conn-icon'});
const connText = h('span', {class: 'conn-text'});
const retryBtn = h(
  'button',
  {type: 'button', class: 'btn btn-small', hidden: true, on: {click: () => conn.retryNow()}},
  'Retry now',
);
replace(connEl, connIcon, connText, retryBtn);
let connState = null;
let countdown = 0;

function renderConn() {
  const d = connState;
  if (!d) return;
  let text;
  if (d.state === 'live') text = 'Live';
  else if (d.state === 'connecting') text = 'Connecting…';
  else if (d.retryAt) {
    const s = Math.max(0, Math.ceil((d.retryAt - Date.now()) / 1000));
    text = d.state === 'offline' ? `Offline · retrying in ${s} s` : `Reconnecting in ${s} s`;
  } else {
    text = d.state === 'offline' ? 'Offline' : 'Reconnecting…';
  }
  setText(connText, text);
  connEl.title =
    d.state === 'live' ? 'Receiving events live' : d.reason ? `Last close: ${d.reason}` : '';
  retryBtn.hidden = !d.retryAt;
}

conn.addEventListener('state', (e) => {
  const d = e.detail;
  const changed = !connState || connState.state !== d.state;
  connState = d;
  connEl.dataset.state = d.state;
  if (changed) {
    const name = d.state === 'live' ? 'live' : d.state === 'offline' ? 'offline' : 'reconnecting';
    connIcon.replaceChildren(icon(name));
  }
  clearInterval(countdown);
  if (d.retryAt) countdown = setInterval(renderConn, 250);
  renderConn();
});

// The database behind the gateway changed (ids started over), or a resume came back incomplete
// (the retention dropped events it missed): start every view afresh.
function restartViews() {
  detail.close();
  if (view) view.destroy();
  view = null;
  route = null;
  onRoute();
}
conn.addEventListener('epoch', restartViews);
conn.addEventListener('incomplete', restartViews);

const search = new SearchBox(document.getElementById('search'), {api, navigate});
const notifier = new Notifier(document.getElementById('notify'), {
  wsUrl: wsUrl.toString(),
  navigate,
});

window.addEventListener('hashchange', onRoute);
onRoute();
conn.start();

// For tests and debugging in the console.
window.__adw = {
  conn,
  search,
  notifier,
  get view() {
    return view;
  },
};
