// parts.js: what the Connections, Alerts and Admin pages share. Their styles
// are pages.css, linked by index.html beside style.css (linked later, by a
// page, they arrived after the page was drawn: it showed unstyled first);
// SVG is built with DOM methods, text through textContent, as ui.js's el()
// does for HTML.

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}
