// Being built (helper A).
import { el } from '../ui.js';

export async function render(main) {
  main.appendChild(el('h1', {}, 'jobs'));
}
