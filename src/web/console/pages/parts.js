// parts.js: what the Connections, Alerts and Admin pages share. Their styles
// are a stylesheet of their own (pages.css, served from 'self' as the CSP
// allows), linked once; SVG is built with DOM methods, text through
// textContent, as ui.js's el() does for HTML.

export function useStyles() {
  if (document.getElementById('pages-css')) return;
  const link = document.createElement('link');
  link.id = 'pages-css';
  link.rel = 'stylesheet';
  link.href = '/console/pages/pages.css';
  document.head.appendChild(link);
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}
