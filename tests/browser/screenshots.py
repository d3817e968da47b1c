"""The console's screenshots for the documentation (run by `scripts/demo --screenshots`).

Environment: AMTACS_WEB_URL, AMTACS_USER, AMTACS_PASSWORD, AMTACS_JOB (a
finished job with a log), AMTACS_SHOTS_DIR (where console-jobs.png and
console-job.png go; docs/ for the README).

Light mode and a 1280x800 viewport whatever the machine's settings, so that
the pictures come out the same each time. Each is taken once the page shows
what it is meant to (the rows; the job's log), never after a fixed wait.
"""
import os
import sys

from console import Console

out = os.environ['AMTACS_SHOTS_DIR']
job = os.environ['AMTACS_JOB']
c = Console(width=1280, height=800)
d = c.driver
t = c.t
d.execute_cdp_cmd('Emulation.setEmulatedMedia',
                  {'features': [{'name': 'prefers-color-scheme', 'value': 'light'}]})
d.execute_cdp_cmd('Emulation.setDeviceMetricsOverride',
                  {'width': 1280, 'height': 800, 'deviceScaleFactor': 1, 'mobile': False})
os.makedirs(out, exist_ok=True)


def shot(name):
    path = os.path.join(out, name)
    d.save_screenshot(path)
    c.ok(os.path.getsize(path) > 10000, f'{path} saved')


try:
    c.login(os.environ['AMTACS_USER'], os.environ['AMTACS_PASSWORD'])
    c.wait_for(f'{t("job-row")}[data-id="{job}"]')
    # the counts are read beside the page: wait for them too
    c.wait(lambda: (c.text_of(t('count-queued-n')) or '') != '', what='the counts by state')
    d.execute_script('document.activeElement && document.activeElement.blur()')
    shot('console-jobs.png')

    c.go(f'#/jobs/{job}')
    c.wait_for(f'{t("log")}[data-state="stored"]')
    c.wait(lambda: (c.text_of(t('log')) or '').count('\n') > 20, what="the job's log")
    d.execute_script('window.scrollTo(0, 0)')
    shot('console-job.png')
    c.no_csp_violations()
except Exception as e:  # noqa: BLE001 - reported as a failed check
    c.ok(False, 'the screenshots were taken', repr(e))
c.done()
sys.exit(0)
