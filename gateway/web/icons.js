// Inline SVG icons, drawn for this dashboard on a 24x24 grid (stroked with currentColor).
// Built with DOM calls from the constant path data below: no markup strings.

const NS = 'http://www.w3.org/2000/svg';
const CIRCLE = 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z';

// name -> list of path data; a leading '*' fills the path instead of stroking it.
const PATHS = {
  tool: ['M9 7l-5 5 5 5', 'M15 7l5 5-5 5', 'M13.5 5l-3 14'],
  result: ['M4 4h16v16H4z', 'M8 12l3 3 5-6'],
  text: ['M4 5h16v11H10l-5 4v-4H4z', 'M8 9h8', 'M8 12h5'],
  thinking: [
    'M9 18h6',
    'M10 21h4',
    'M12 3a6 6 0 0 0-4 10.5c.7.7 1 1.5 1 2.5h6c0-1 .3-1.8 1-2.5A6 6 0 0 0 12 3z',
  ],
  pre: ['M3 12h11', 'M10 8l4 4-4 4', 'M19 4v16'],
  post: ['M5 4v16', 'M9 12h11', 'M16 8l4 4-4 4'],
  prompt: ['M12 4a4 4 0 1 0 0 8a4 4 0 1 0 0-8z', 'M4 21c1.5-4 4.5-6 8-6s6.5 2 8 6'],
  hook: ['M15 3v11a5 5 0 0 1-10 0v-3', 'M5 11l-2 2', 'M12 3h6'],
  system: [
    'M7 7h10v10H7z',
    'M10 3v4',
    'M14 3v4',
    'M10 17v4',
    'M14 17v4',
    'M3 10h4',
    'M3 14h4',
    'M17 10h4',
    'M17 14h4',
  ],
  start: ['M7 4l13 8-13 8z'],
  complete: [CIRCLE, 'M8 12l3 3 5-6'],
  error: ['M12 3L2 20h20z', 'M12 9v5', 'M12 17h.01'],
  stop: [CIRCLE, 'M9 9h6v6H9z'],
  other: ['M12 8a4 4 0 1 0 0 8a4 4 0 1 0 0-8z'],
  running: [CIRCLE, 'M12 7v5l3 2'],
  completed: [CIRCLE, 'M8 12l3 3 5-6'],
  failed: [CIRCLE, 'M9 9l6 6', 'M15 9l-6 6'],
  unknown: [CIRCLE, 'M12 8v5', 'M12 16h.01'],
  stalled: [CIRCLE, 'M10 9v6', 'M14 9v6'],
  approval: ['M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z', 'M12 8v5', 'M12 16h.01'],
  agent: ['M5 8h14v11H5z', 'M12 4v4', 'M9 13h.01', 'M15 13h.01', 'M2 12v3', 'M22 12v3'],
  chevron: ['M9 6l6 6-6 6'],
  live: [
    '*M12 9a3 3 0 1 0 0 6a3 3 0 1 0 0-6z',
    'M6.3 6.3a8 8 0 0 0 0 11.4',
    'M17.7 6.3a8 8 0 0 1 0 11.4',
  ],
  reconnecting: ['M20 12a8 8 0 0 1-14 5.3', 'M4 12a8 8 0 0 1 14-5.3', 'M18 3v4h-4', 'M6 21v-4h4'],
  offline: [CIRCLE, 'M5.6 5.6l12.8 12.8'],
  copy: ['M9 9h11v11H9z', 'M5 15H4V4h11v1'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  back: ['M19 12H5', 'M11 6l-6 6 6 6'],
  filter: ['M3 5h18l-7 8v6l-4 2v-8z'],
  down: ['M12 5v14', 'M6 13l6 6 6-6'],
  up: ['M12 19V5', 'M6 11l6-6 6 6'],
};

// Returns an <svg> for `name` (unknown names draw 'other'). With a label the icon is announced
// (role img + <title>); without one it is hidden from assistive technology.
export function icon(name, label) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${PATHS[name] ? name : 'other'}`);
  svg.setAttribute('focusable', 'false');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
    const t = document.createElementNS(NS, 'title');
    t.textContent = label;
    svg.appendChild(t);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  for (const spec of PATHS[name] || PATHS.other) {
    const p = document.createElementNS(NS, 'path');
    if (spec[0] === '*') {
      p.setAttribute('d', spec.slice(1));
      p.setAttribute('class', 'fill');
    } else {
      p.setAttribute('d', spec);
    }
    svg.appendChild(p);
  }
  return svg;
}
