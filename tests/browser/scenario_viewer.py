"""Scenario: a viewer in the console (driven by tests/integration/test_console_viewer.sh).

Environment: AMTACS_WEB_URL, AMTACS_PASSWORD (of vera, a viewer, and olga,
an operator), AMTACS_JOB (held running), AMTACS_CHOICE_JOB (a finished job
that listed ALTCONN then AMTDEMO and ran on AMTDEMO after ALTCONN could not
start it), AMTACS_ALERTS (open alerts),
AMTACS_EVIL_URL (a page of another origin with forms posting to amtacs-web).
"""
import os
import traceback

from selenium.common.exceptions import StaleElementReferenceException

from console import Console

PW = os.environ['AMTACS_PASSWORD']
JOB = os.environ['AMTACS_JOB']
CHOICE = os.environ['AMTACS_CHOICE_JOB']
ALERTS = int(os.environ['AMTACS_ALERTS'])
EVIL = os.environ['AMTACS_EVIL_URL']

c = Console()
t = c.t


def text(selector):
    """The element's text, None while it is missing or being replaced (the
    pages redraw parts of themselves as events arrive)."""
    try:
        return c.text_of(selector)
    except StaleElementReferenceException:
        return None


def wait_text(selector, want, timeout=None):
    return c.wait(lambda: (lambda v: v if v is not None and want in v else False)(text(selector)),
                  timeout, f'{selector} to show {want!r}')


def cross_site(who):
    """The other site's two forms, posted by the browser with its cookie."""
    for form, what in (('kill-go', 'an empty form post'),
                       ('kill-json-go', 'a text/plain form post shaped as JSON')):
        c.driver.get(EVIL)
        c.click(f'#{form}')
        c.wait(lambda: c.driver.current_url.startswith(c.url), what='the answer of amtacs-web')
        body = c.driver.find_element('css selector', 'body').text
        if form == 'kill-go':
            c.ok('"status":403' in body.replace(' ', '') and 'X-CSRF-Token' in body,
                 f'{who}: {what} from another origin is refused: 403, no CSRF token', body)
        else:
            c.ok('"status":415' in body.replace(' ', ''),
                 f'{who}: {what} from another origin is refused: 415, not JSON', body)


try:
    # --- the pages a viewer sees --------------------------------------------------------------
    c.open('#/jobs')
    c.login('vera', PW)
    c.wait_for(f'{t("job-row")}[data-id="{JOB}"][data-state="running"]')
    c.ok(True, 'vera (viewer) sees the Jobs page with the running job')
    c.ok(not c.finds(t('nav-admin')), 'the navigation has no Admin for a viewer')
    c.ok(all(c.finds(t(f'nav-{p}')) for p in ('jobs', 'connections', 'alerts')),
         'and has Jobs, Connections and Alerts')
    c.screenshot('viewer-jobs')
    c.no_csp_violations('the Jobs page: no CSP violation')

    c.go(f'#/jobs/{JOB}')
    wait_text(t('job-title'), f'Job {JOB}')
    c.wait(lambda: c.find(t('job-state')).get_attribute('data-state') == 'running' or
           bool(c.finds(f'{t("job-state")} [data-state="running"]')), what='the job running')
    c.ok(not c.finds(t('kill')), 'a running job\'s page has no Kill for a viewer')
    c.ok(not c.finds(t('rerun')) and not c.finds(t('resolve')), 'nor Run again or Resolve')
    c.wait_for(t('tl-started'))
    c.ok(True, 'the job\'s timeline shows when it started')
    c.screenshot('viewer-job')
    c.no_csp_violations('the job page: no CSP violation')

    c.go(f'#/jobs/{CHOICE}')
    wait_text(t('job-title'), f'Job {CHOICE}')
    c.wait_visible(t('job-choice'))
    c.eq(['ALTCONN', 'AMTDEMO'],
         [e.get_attribute('data-name') for e in c.finds(t('choice-listed-item'))],
         'a job\'s page shows the connections it listed, in order')
    c.ok('(primary)' in text(f'{t("choice-listed-item")}[data-name="ALTCONN"]') and
         '(alternate)' in text(f'{t("choice-listed-item")}[data-name="AMTDEMO"]'),
         'the primary and its alternate')
    wait_text(t('choice-connection'), 'The job ran on AMTDEMO.')
    c.ok(True, 'and the connection that ran it')
    tries = c.finds(t('choice-try'))
    c.eq(['ALTCONN'], [e.get_attribute('data-connection') for e in tries], 'each connection tried')
    c.ok('connect: Connection refused' in text(f'{t("choice-try")}[data-connection="ALTCONN"]'),
         'with why it could not start the job', text(t('choice-tries')))
    c.driver.execute_script('arguments[0].scrollIntoView()', c.find(t('job-choice')))
    c.screenshot('viewer-job-choice')
    c.go(f'#/jobs/{JOB}')
    wait_text(t('job-title'), f'Job {JOB}')
    c.wait_for(t('field-connection'))
    c.ok(not c.find(t('job-choice')).is_displayed(), 'the running job names one connection: no choice panel')
    c.no_csp_violations('the job pages: no CSP violation')

    c.go('#/connections')
    c.wait_for(f'{t("connection")}[data-name="AMTDEMO"]')
    wait_text(f'{t("connection")}[data-name="AMTDEMO"] {t("comm-state")}', 'enabled')
    c.ok(True, 'the Connections page shows AMTDEMO with Full Comm enabled')
    c.ok(not c.finds(t('comm-enable')) and not c.finds(t('comm-limit')) and not c.finds(t('comm-disable')),
         'no Full Comm button for a viewer')
    wait_text(f'{t("connection")}[data-name="AMTDEMO"] {t("in-flight")}', '1')
    c.ok(True, 'one job in flight on AMTDEMO')
    c.wait_for(t('chart'))
    label = c.find(t('chart')).get_attribute('aria-label')
    c.ok(label and 'finished' in label and 'failed' in label,
         'the chart of jobs per minute has a text alternative', label)
    c.ok(c.finds(f'{t("chart")} rect'), 'and bars for the jobs that ended')
    c.ok(c.finds(t('chart-table')), 'and a table by hour')
    c.screenshot('viewer-connections')
    c.no_csp_violations('the Connections page: no CSP violation')

    c.go('#/alerts')
    c.wait_for(f'{t("alerts-open")} {t("alert")}')
    open_alerts = c.finds(f'{t("alerts-open")} {t("alert")}')
    c.eq(ALERTS, len(open_alerts), 'the Alerts page lists the open alerts first')
    c.ok(c.finds(f'{t("alert")} {t("alert-job")}'), 'each linked to its job')
    c.ok(not c.finds(t('ack')), 'no Acknowledge for a viewer')
    c.screenshot('viewer-alerts')
    c.no_csp_violations('the Alerts page: no CSP violation')

    c.go('#/admin')
    c.wait_for(t('admins-only'))
    c.ok(not c.finds('[data-test^="admin-section-"]') and not c.finds(t('bu-table')),
         'no admin page for a viewer', c.hash())
    c.ok('Admins only' in text(t('admins-only')), 'opening #/admin says "admins only"')
    for path in ('/users', '/tokens', '/batch-users', '/audit'):
        st, detail = c.api('GET', path)
        c.ok(st == 403 and str(detail).startswith('permission denied'),
             f'GET {path} from the page: 403 from PostgreSQL ({detail})')

    # --- 360 px wide: nothing runs off the side --------------------------------------------
    c.driver.set_window_size(360, 800)
    for route, ready in (('#/connections', t('chart')), ('#/alerts', t('alert'))):
        c.go(route)
        c.wait_for(ready)
        wide = c.driver.execute_script(
            'return [document.documentElement.scrollWidth, document.documentElement.clientWidth]')
        c.ok(wide[0] <= wide[1], f'{route} at 360 px: no horizontal scrolling', wide)
        c.screenshot(f'viewer-{route[2:]}-360')
    c.driver.set_window_size(1280, 900)

    # --- forged requests with the viewer's own session and CSRF token --------------------------
    st, detail = c.api('POST', f'/jobs/{JOB}/kill')
    c.eq([403, 'permission denied for function request_kill'], [st, detail],
         'a forged kill with the viewer\'s session and CSRF token is refused by PostgreSQL')
    st, detail = c.api('PUT', '/connections/AMTDEMO/comm', {'state': 'disabled'})
    c.eq([403, 'permission denied for function set_comm'], [st, detail],
         'a forged Full Comm change is refused by PostgreSQL')
    st, detail = c.api('POST', '/alerts/1/ack')
    c.eq([403, 'permission denied for function acknowledge_alert'], [st, detail],
         'a forged acknowledge is refused by PostgreSQL')
    c.no_csp_violations('every page the viewer opened: no CSP violation')

    # --- a cross-site form post --------------------------------------------------------------
    cross_site('vera')
    c.open('#/jobs')
    c.wait_for(t('logout'))
    c.click(t('logout'))
    c.wait_visible(t('login-form'))
    c.login('olga', PW)
    c.wait_for(f'{t("job-row")}[data-id="{JOB}"]')
    cross_site('olga (an operator, who may kill)')
    c.open(f'#/jobs/{JOB}')
    wait_text(t('job-title'), f'Job {JOB}')
    c.wait_for(t('kill'))
    c.ok(c.find(t('job-state')).get_attribute('data-state') == 'running' or
         bool(c.finds(f'{t("job-state")} [data-state="running"]')),
         'the job still runs: the cross-site posts killed nothing')
except Exception:
    c.ok(False, 'the scenario ran to its end', traceback.format_exc())
    c.screenshot('viewer-failure')
finally:
    c.done()
