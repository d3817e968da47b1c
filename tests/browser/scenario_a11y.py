"""The console for people who do not use a mouse, who use a screen reader,
who set their system to dark, or who open it on a phone: each page is
checked in a real browser.

  - keyboard: log in with Tab, typing and Enter; on a running job's page,
    Tab reaches Kill, Enter opens the confirmation with the focus inside it,
    Escape closes it and nothing is killed; the focused control is visibly
    marked (an outline or a shadow);
  - names: every visible input, select, textarea, button and link has an
    accessible name (its label, aria-label, aria-labelledby or text);
  - contrast: the text of every visible heading, paragraph, cell, label,
    button and link is at least 4.5:1 against its background (WCAG AA), in
    light and in dark mode;
  - dark mode follows the system (prefers-color-scheme);
  - 360 px wide: no page scrolls sideways (a wide table scrolls in its own
    box).

Environment: AMTACS_WEB_URL, AMTACS_USER / AMTACS_PASSWORD (an admin, who
sees every page), AMTACS_JOB (a job held running), AMTACS_DONE_JOB (an
ended job).
"""
import os

from selenium.webdriver.common.keys import Keys

from console import Console

URL = os.environ['AMTACS_WEB_URL']
USER = os.environ['AMTACS_USER']
PW = os.environ['AMTACS_PASSWORD']
JOB = os.environ['AMTACS_JOB']
DONE = os.environ['AMTACS_DONE_JOB']
PAGES = [('jobs', '#/jobs'), ('running job', f'#/jobs/{JOB}'), ('ended job', f'#/jobs/{DONE}'),
         ('connections', '#/connections'), ('alerts', '#/alerts'), ('admin', '#/admin')]

# The accessible name as a screen reader would read it, simplified: what
# labels the control, else its own text.
NAMELESS = '''
const out = [];
const seen = (e) => e.offsetParent !== null || getComputedStyle(e).position === 'fixed';
for (const e of document.querySelectorAll('input, select, textarea, button, a[href]')) {
  if (!seen(e) || e.type === 'hidden') continue;
  let name = (e.getAttribute('aria-label') || '').trim();
  const by = e.getAttribute('aria-labelledby');
  if (!name && by) name = by.split(/\\s+/).map((i) => (document.getElementById(i) || {}).textContent || '').join(' ').trim();
  if (!name && e.id) { const l = document.querySelector(`label[for="${CSS.escape(e.id)}"]`); if (l) name = l.textContent.trim(); }
  if (!name) { const l = e.closest('label'); if (l) name = l.textContent.trim(); }
  if (!name && (e.tagName === 'BUTTON' || e.tagName === 'A')) name = e.textContent.trim();
  if (!name && e.type === 'submit') name = (e.value || '').trim();
  if (!name) name = (e.getAttribute('title') || '').trim();
  if (!name) out.push(e.outerHTML.slice(0, 160));
}
return out;
'''

# Contrast of each visible text against the first opaque background behind it.
LOW_CONTRAST = '''
const rgb = (s) => { const m = s.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
  const p = m[1].split(',').map((x) => parseFloat(x)); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
const bg = (e) => { for (let x = e; x; x = x.parentElement) { const c = rgb(getComputedStyle(x).backgroundColor);
  if (c && c.a > 0.5) return c; } return rgb(getComputedStyle(document.documentElement).backgroundColor) || {r: 255, g: 255, b: 255, a: 1}; };
const out = [];
let n = 0;
for (const e of document.querySelectorAll('h1, h2, h3, p, td, th, label, button, a, li, dt, dd, span, pre, legend, summary')) {
  if (e.offsetParent === null) continue;
  const own = [...e.childNodes].some((t) => t.nodeType === 3 && t.textContent.trim());
  if (!own) continue;
  const s = getComputedStyle(e);
  if (s.visibility === 'hidden' || parseFloat(s.opacity) < 0.5) continue;
  const fg = rgb(s.color), b = bg(e);
  if (!fg) continue;
  const l1 = lum(fg), l2 = lum(b);
  const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
  const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
  n++;
  if (ratio < need) out.push(`${ratio.toFixed(2)} < ${need}: <${e.tagName.toLowerCase()}> "${e.textContent.trim().slice(0, 40)}" ${s.color} on rgb(${b.r}, ${b.g}, ${b.b})`);
}
return [n, out];
'''

BODY_LUMINANCE = '''
const c = getComputedStyle(document.body).backgroundColor.match(/\\d+(\\.\\d+)?/g).map(Number);
const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
'''


def scheme(c, value):
    c.driver.execute_cdp_cmd('Emulation.setEmulatedMedia',
                             {'features': [{'name': 'prefers-color-scheme', 'value': value}]})


def settle(c, name, route):
    """Opens a page and waits until it has drawn its content."""
    c.go(route)
    c.wait(lambda: c.driver.execute_script(
        'const m = document.querySelector("main"); return m && m.children.length > 0 && '
        '!m.querySelector("[aria-busy=true]")'), what=f'the {name} page to be drawn')
    if name == 'jobs':
        c.wait_for(c.t('job-row'))
    if name in ('running job', 'ended job'):
        c.wait_for(c.t('log'))


def focused(c):
    return c.driver.switch_to.active_element


def tab_to(c, selector, limit=80):
    """Presses Tab until selector has the focus; True if it got there."""
    target = c.find(selector)
    for _ in range(limit):
        if focused(c) == target:
            return True
        focused(c).send_keys(Keys.TAB)
    return focused(c) == target


c = Console()
try:
    # --- keyboard: logging in --------------------------------------------------------------
    c.open('#/login')
    c.wait_visible(c.t('login-user'))
    c.driver.find_element('css selector', 'body').click()
    c.ok(tab_to(c, c.t('login-user')), 'Tab reaches the user name field')
    focused(c).send_keys(USER)
    focused(c).send_keys(Keys.TAB)
    c.ok(focused(c) == c.find(c.t('login-password')), 'the next Tab the password field')
    focused(c).send_keys(PW)
    focused(c).send_keys(Keys.ENTER)
    c.wait_text(c.t('me'), USER)
    c.ok(True, 'Enter logs in')

    # --- keyboard: Kill is reached and confirmed by keyboard; Escape cancels ----------------
    settle(c, 'running job', f'#/jobs/{JOB}')
    c.wait_visible(c.t('kill'))
    c.driver.find_element('css selector', 'body').click()
    c.ok(tab_to(c, c.t('kill')), 'on a running job, Tab reaches Kill')
    el = focused(c)
    marked = c.driver.execute_script(
        'const s = getComputedStyle(arguments[0]); '
        'return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"', el)
    c.ok(marked, 'the focused control is visibly marked (outline or shadow)')
    el.send_keys(Keys.ENTER)
    c.wait_visible(c.t('confirm-dialog'))
    inside = c.driver.execute_script(
        'return document.querySelector(\'[data-test="confirm-dialog"]\').contains(document.activeElement)')
    c.ok(inside, 'Enter opens the confirmation, with the focus inside it')
    focused(c).send_keys(Keys.ESCAPE)
    c.wait(lambda: not [d for d in c.finds(c.t('confirm-dialog')) if d.is_displayed()],
           what='the dialog to close')
    c.ok(True, 'Escape closes it')
    st, doc = c.api('GET', f'/jobs/{JOB}')
    c.ok(st == 200 and doc.get('kill_requested_at') is None, 'and nothing was killed',
         f'{st} {doc}')

    # --- names and contrast, light and dark ---------------------------------------------------
    for mode in ('light', 'dark'):
        scheme(c, mode)
        for name, route in PAGES:
            settle(c, name, route)
            if mode == 'light':
                missing = c.driver.execute_script(NAMELESS)
                c.ok(not missing, f'{name}: every control has an accessible name', '\n'.join(missing[:8]))
            n, low = c.driver.execute_script(LOW_CONTRAST)
            c.ok(n > 0 and not low, f'{name} ({mode}): the text of {n} elements has a contrast of at least 4.5:1 (3:1 large)',
                 '\n'.join(low[:8]))
        lum = c.driver.execute_script(BODY_LUMINANCE)
        if mode == 'light':
            c.ok(lum > 0.6, f'light mode: a light background (luminance {lum:.2f})')
        else:
            c.ok(lum < 0.1, f'dark mode follows the system: a dark background (luminance {lum:.2f})')
            c.screenshot('a11y-dark-jobs')
    scheme(c, 'light')

    # --- 360 px wide: nothing scrolls sideways ----------------------------------------------
    c.driver.set_window_size(360, 800)
    for name, route in PAGES:
        settle(c, name, route)
        sw, iw, wide = c.driver.execute_script(
            'const w = window.innerWidth, out = [];'
            'for (const e of document.querySelectorAll("body *")) {'
            '  const r = e.getBoundingClientRect();'
            '  if (r.right > w + 1 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > w + 1)'
            '      ) out.push(`<${e.tagName.toLowerCase()} class="${e.className}" data-test="${e.dataset.test || ""}"> in <${e.parentElement.tagName.toLowerCase()} class="${e.parentElement.className}"> right ${Math.round(r.right)}`); }'
            'return [document.documentElement.scrollWidth, w, out.slice(0, 6)]')
        c.ok(sw <= iw + 1, f'{name} at 360 px: the page does not scroll sideways ({sw} px in {iw})',
             'too wide: ' + '; '.join(wide))
    c.screenshot('a11y-360-connections')
    c.no_csp_violations()

    # --- the checks above can fail: a grey text and a control without a name are found --------
    c.driver.set_window_size(1280, 900)
    settle(c, 'jobs', '#/jobs')
    c.driver.execute_script(
        'const p = document.createElement("p"); p.textContent = "faint words"; p.style.color = "#c8c8c8";'
        'p.style.backgroundColor = "#ffffff"; document.querySelector("main").appendChild(p);'
        'const i = document.createElement("input"); document.querySelector("main").appendChild(i);')
    n, low = c.driver.execute_script(LOW_CONTRAST)
    c.ok(any('faint words' in x for x in low), 'the contrast check finds a light grey text on white', low)
    missing = c.driver.execute_script(NAMELESS)
    c.ok(any(x.startswith('<input') for x in missing), 'the name check finds an input without a label', missing)
except Exception as e:  # a wait that ran out, a control not found: a failure, not a pass
    c.ok(False, 'the scenario runs to its end', f'{type(e).__name__}: {e}')
finally:
    c.done()
