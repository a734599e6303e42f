// Small DOM helpers. Text always goes in through text nodes (textContent), never as markup:
// event data cannot become HTML here.

// h('div', {class: 'x', dataset: {id: 1}, on: {click: fn}, title: 't'}, child, 'text', [more])
// Attributes with a null/undefined/false value are skipped; `true` sets an empty attribute.
// Children: Nodes, strings and numbers (as text), arrays of those, null/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'style') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

// Replaces el's children with the given ones.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Sets el's text when it differs (avoids needless layout work on hot paths).
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

// Visually hidden text for screen readers.
export function sr(text) {
  return h('span', {class: 'sr-only'}, text);
}
