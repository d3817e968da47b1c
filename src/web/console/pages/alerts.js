// A placeholder: helper B's page replaces this file.
import { el } from '../ui.js';

export async function render(main) {
  main.appendChild(el('h1', {}, 'Alerts'));
  main.appendChild(el('p', { class: 'muted' }, 'This page is not built yet.'));
}
