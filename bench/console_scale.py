#!/usr/bin/env python3
"""The console's Jobs page at scale, in a real headless Chromium (run by bench/web).

Logs in to the console as a user, then measures with the browser's own
Performance API (times on the page's clock, no WebDriver round trip in them):

  first   a fresh load of #/jobs (a new document, the session cookie already
          there): from the navigation's start (performance.timeOrigin) to the
          Jobs table filled, --reloads times;
  turn    a page turn through the console's own "Older" control: from a mark
          set just before the click to the table filled with the next page,
          --turns times in a row;
  ffirst, fturn   the same with a filter (#/jobs?state=finished&connection=C&q=Q).

"The table filled" is the console's own mark, performance.mark('amtacs-jobs-
rendered'), which the Jobs page sets once the page's rows are in the DOM
(src/web/console/pages/jobs.js). A PerformanceObserver, installed before any
of the page's scripts runs (DevTools' Page.addScriptToEvaluateOnNewDocument:
the page's CSP does not apply to it), notes each such mark with the hash and
the rows shown then, and the time of the next frame after it (a
requestAnimationFrame, then a task: the rows laid out and painted). The
figure printed is that second time, the one a person sees; the first is kept
in the raw output.

Every sample is checked before it is written: 50 rows on each page, newest
first, each page's first id below the previous page's last, the hash holding
before=<that last id>, the first page starting at the newest job (--newest),
every row fitting the filter, no error shown; a time that is not a number
from 0 to 60,000 ms fails too. On any failure the script says which and
exits 1 (bench/web then refuses to print figures).

Output: --out FILE gets one line per sample, "KIND PAINTED RENDERED BEFORE_READ
READ AFTER_READ" (ms: to the table painted, to the rows in the DOM; the
parts: until the page's GET /api/v1/jobs began, that read (Resource Timing),
from its answer to the table painted).
The first page is saved as build/screenshots/console-scale-jobs.png
($AMTACS_SCREENSHOTS); --screenshots DIR saves it as DIR/console-jobs.png too.

  bench/console_scale.py --url URL --user U --password-file F --newest ID
      --connection C --q Q --out FILE [--turns 30] [--reloads 15] [--screenshots DIR]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'browser'))
from console import Console  # noqa: E402

ROWS = 50

# Installed in every new document before the console's scripts run.
OBSERVER = r'''
(() => {
  window.__bench = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name !== 'amtacs-jobs-rendered') continue;
      const rows = [...document.querySelectorAll('[data-test="job-row"]')];
      // the page's read of /api/v1/jobs that this render shows (the last one begun before it)
      const reads = performance.getEntriesByType('resource').filter(
        (x) => x.name.includes('/api/v1/jobs?') && x.startTime <= e.startTime);
      const read = reads.length ? reads[reads.length - 1] : null;
      const rec = {
        rendered: e.startTime,
        painted: null,
        api_start: read ? read.startTime : null,
        api_end: read ? read.responseEnd : null,
        hash: location.hash,
        ids: rows.map((r) => Number(r.dataset.id)),
        states: rows.map((r) => r.dataset.state),
        conns: rows.map((r) => (r.querySelector('[data-test="row-connection"]') || {}).textContent),
        names: rows.map((r) => (r.querySelector('[data-test="row-name"]') || {}).textContent),
        error: !!document.querySelector('[data-test="jobs-error"], [data-test="page-error"], [data-test="no-jobs"]'),
      };
      window.__bench.push(rec);
      requestAnimationFrame(() => setTimeout(() => { rec.painted = performance.now(); }, 0));
    }
  }).observe({ type: 'mark', buffered: true });
  // for the record (the waterfall): what the browser painted, and when
  window.__lcp = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__lcp.push([e.renderTime || e.startTime, e.size,
                         e.element ? e.element.tagName + '.' + (e.element.dataset.test || '') : '']);
    }
  }).observe({ type: 'largest-contentful-paint', buffered: true });
})();
'''


class Fail(Exception):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True)
    ap.add_argument('--user', required=True)
    ap.add_argument('--password-file', required=True)
    ap.add_argument('--newest', type=int, required=True, help='the newest job id in the table')
    ap.add_argument('--connection', required=True)
    ap.add_argument('--q', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--turns', type=int, default=30)
    ap.add_argument('--reloads', type=int, default=15)
    ap.add_argument('--screenshots')
    a = ap.parse_args()
    with open(a.password_file) as f:
        password = f.read().strip()

    c = Console(url=a.url, width=1280, height=800)
    d = c.driver
    # light mode whatever the machine prefers (the screenshots), and the observer
    d.execute_cdp_cmd('Emulation.setEmulatedMedia',
                      {'features': [{'name': 'prefers-color-scheme', 'value': 'light'}]})
    d.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': OBSERVER})
    samples = []

    def records():
        return d.execute_script('return window.__bench || []')

    def wait_record(count, want_hash, what):
        """The first record after the first `count` whose hash is want_hash, painted."""
        def cond():
            for r in records()[count:]:
                if r['hash'] == want_hash and r['painted'] is not None:
                    return r
            return False
        try:
            return c.wait(cond, timeout=120, what=what)
        except Exception as e:
            raise Fail(f'{what}: {e}; hash {c.hash()!r}, records {[(r["hash"], len(r["ids"])) for r in records()[count:]]}')

    def check_page(r, what, flt, below):
        if r['error']:
            raise Fail(f'{what}: the page shows an error or "no jobs" ({r["hash"]})')
        ids = r['ids']
        if len(ids) != ROWS:
            raise Fail(f'{what}: {len(ids)} rows, not {ROWS}')
        if any(x <= y for x, y in zip(ids, ids[1:])):
            raise Fail(f'{what}: the rows are not newest first: {ids[:5]}...')
        if below is None and not flt and ids[0] != a.newest:
            raise Fail(f'{what}: the first row is job {ids[0]}, not the newest, {a.newest}')
        if below is not None:
            if ids[0] >= below:
                raise Fail(f'{what}: the first row, job {ids[0]}, is not below the previous page\'s last, {below}')
            if f'before={below}' not in r['hash']:
                raise Fail(f'{what}: the hash {r["hash"]!r} does not hold before={below}')
        if flt:
            for i, st, cn, nm in zip(ids, r['states'], r['conns'], r['names']):
                if st != 'finished' or cn != a.connection or a.q.lower() not in (nm or '').lower():
                    raise Fail(f'{what}: job {i} ({st}, {cn}, {nm!r}) does not fit the filter')

    def sample(kind, r, t0):
        if r['api_start'] is None or not (t0 <= r['api_start'] <= r['api_end'] <= r['rendered']):
            raise Fail(f'{kind}: no read of /api/v1/jobs between the start and the render ({r})')
        # to the table painted; to the rows in the DOM; the parts: before
        # the read of /api/v1/jobs began (the app's start, the route), the
        # read itself, and from its answer to the table painted
        v = (r['painted'] - t0, r['rendered'] - t0, r['api_start'] - t0,
             r['api_end'] - r['api_start'], r['painted'] - r['api_end'])
        for x in v:
            if not (0 <= x <= 60000):
                raise Fail(f'{kind}: {x} ms is not a time from 0 to 60,000 ms')
        samples.append((kind,) + v)

    def first(kind, hash_route, flt):
        for i in range(a.reloads):
            # a new document each time: the route set, then the page reloaded
            # (as F5 does; a new URL differing by its hash alone would stay
            # in the page)
            if c.hash() != hash_route:
                c.go(hash_route)
            d.refresh()
            r = wait_record(0, hash_route, f'{kind} render {i + 1}')
            check_page(r, f'{kind} render {i + 1}', flt, None)
            sample(kind, r, 0.0)  # startTime counts from the navigation's start
        # the last load's requests, for where a first render's time goes
        w = d.execute_script('''
            return performance.getEntriesByType('navigation').concat(
                performance.getEntriesByType('resource')).map((e) => [
                  e.name.replace(location.origin, ''), e.startTime, e.responseStart, e.responseEnd,
                  e.transferSize]);''')
        with open(f'{a.out}.{kind}.waterfall', 'w') as f:
            f.write(f'# the last {kind} load: request, start, first byte, end (ms from the navigation), bytes\n')
            for name, st, fb, en, size in w:
                f.write(f'{name} {st:.1f} {fb:.1f} {en:.1f} {size}\n')
            f.write(f'amtacs-jobs-rendered {r["rendered"]:.1f}; painted {r["painted"]:.1f}\n')
            for e in d.execute_script("return performance.getEntriesByType('paint').map((e) => [e.name, e.startTime])"):
                f.write(f'{e[0]} {e[1]:.1f}\n')
            for e in d.execute_script('return window.__lcp'):
                f.write(f'largest-contentful-paint {e[0]:.1f} {e[1]} {e[2]}\n')
        return r

    def turns(kind, r, flt):
        for i in range(a.turns):
            last = r['ids'][-1]
            n = len(records())
            t0 = d.execute_script('''
                const b = document.querySelector('[data-test="page-older"]');
                if (!b || b.disabled) return null;
                const t = performance.now();
                b.click();
                return t;''')
            if t0 is None:
                raise Fail(f'{kind} {i + 1}: no Older control to click (after job {last})')
            def cond():
                for x in records()[n:]:
                    if f'before={last}&' in x['hash'] + '&' and x['painted'] is not None:
                        return x
                return False
            try:
                r = c.wait(cond, timeout=120, what=f'{kind} {i + 1}')
            except Exception as e:
                raise Fail(f'{kind} {i + 1}: {e}; hash {c.hash()!r}')
            check_page(r, f'{kind} {i + 1}', flt, last)
            sample(kind, r, t0)

    try:
        c.open('#/login')
        c.login(a.user, password)
        c.wait_for(c.t('job-row'))
        plain = '#/jobs'
        r = first('first', plain, False)
        c.screenshot('console-scale-jobs')  # $AMTACS_SCREENSHOTS, build/screenshots by default
        if a.screenshots:
            os.makedirs(a.screenshots, exist_ok=True)
            d.save_screenshot(os.path.join(a.screenshots, 'console-jobs.png'))
        turns('turn', r, False)
        q = f'#/jobs?state=finished&connection={a.connection}&q={a.q}'
        r = first('ffirst', q, True)
        turns('fturn', r, True)
        c.browser_log()
        if c.csp_seen:
            raise Fail('the browser reported a CSP violation: ' + c.csp_seen[0])
    except Fail as e:
        print(f'console_scale: {e}', file=sys.stderr)
        c.quit()
        return 1
    c.quit()
    want = {'first': a.reloads, 'ffirst': a.reloads, 'turn': a.turns, 'fturn': a.turns}
    for k, n in want.items():
        got = sum(1 for s in samples if s[0] == k)
        if got != n:
            print(f'console_scale: {got} {k} samples, not {n}', file=sys.stderr)
            return 1
    with open(a.out, 'w') as f:
        for s in samples:
            f.write(s[0] + ''.join(f' {x:.1f}' for x in s[1:]) + '\n')
    return 0


if __name__ == '__main__':
    t = time.monotonic()
    rc = main()
    print(f'console_scale: {time.monotonic() - t:.0f} s', file=sys.stderr)
    sys.exit(rc)
