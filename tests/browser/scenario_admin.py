"""Scenario: an admin in the console (driven by tests/integration/test_console_admin.sh).

Environment: AMTACS_WEB_URL, AMTACS_SIM_URL, AMTACS_PASSWORD (of adam, an
admin), AMTACS_TOKEN (an API token of the scheduler role), AMTACS_BU_PASSWORD
(Batch User webbu's password, which the simulator alone knows so far).
"""
import json
import os
import traceback
import urllib.request

from selenium.common.exceptions import StaleElementReferenceException

from console import Console

SIM = os.environ['AMTACS_SIM_URL']
TOKEN = os.environ['AMTACS_TOKEN']
BU_PW = os.environ['AMTACS_BU_PASSWORD']

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


def submit(connection, name, kind='batch'):
    """A job submitted over the API with the token, as a scheduler would."""
    body = json.dumps({'kind': kind, 'connection': connection, 'application': 'DEMO2',
                       'name': name}).encode()
    req = urllib.request.Request(f'{c.url}/api/v1/jobs', data=body, method='POST', headers={
        'Authorization': f'Bearer {TOKEN}', 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())['id']


def counters():
    return json.loads(urllib.request.urlopen(f'{SIM}/sim/counters', timeout=30).read())


def card(name):
    return f'{t("connection")}[data-name="{name}"]'


def click(selector):
    """A click on a control that a live page may just be redrawing."""
    for _ in range(5):
        try:
            return c.click(selector)
        except StaleElementReferenceException:
            pass
    return c.click(selector)


def comm(name, button, state, words):
    c.go('#/connections')
    click(f'{card(name)} {t(button)}')
    c.wait_visible(t('confirm-dialog'))
    said = text(t('confirm-dialog'))
    c.ok(words in said, f'the confirmation says what {state} means ("{words}")', said)
    c.click(t('confirm-ok'))
    wait_text(f'{card(name)} {t("comm-state")}', state)
    c.ok(True, f'the card shows Full Comm {state}')


def row_state(job):
    rows = c.finds(f'{t("job-row")}[data-id="{job}"]')
    return rows[0].get_attribute('data-state') if rows else None


try:
    c.open('#/connections')
    c.login('adam', os.environ['AMTACS_PASSWORD'])
    c.go('#/connections')
    wait_text(f'{card("AMTDEMO")} {t("comm-state")}', 'enabled')
    c.ok(c.finds(t('nav-admin')), 'an admin has Admin in the navigation')
    c.ok(c.finds(f'{card("AMTDEMO")} {t("comm-disable")}'), 'and the Full Comm buttons')
    c.screenshot('admin-connections')

    # --- Full Comm disabled: a job stays queued ------------------------------------------------
    comm('AMTDEMO', 'comm-disable', 'disabled', 'queued jobs wait')
    starts = counters()['start_calls']
    job = submit('AMTDEMO', 'REPORTTEST01')
    wait_text(f'{card("AMTDEMO")} {t("queued")}', '1')
    c.ok(True, 'the card counts the submitted job queued, live (no reload)')
    c.go('#/jobs')
    c.wait(lambda: row_state(job) == 'queued', what=f'job {job} queued on the Jobs page')
    c.ok(True, f'job {job}, submitted over the API, shows queued on the Jobs page')
    st, doc = c.api('GET', f'/jobs/{job}')
    c.eq(['queued', None], [doc['state'], doc['claimed_at']], 'no daemon claimed it')
    c.eq(starts, counters()['start_calls'], 'and the simulator got no Start')
    wait_text(f'{t("job-row")}[data-id="{job}"] {t("row-state")}', 'queued')
    c.screenshot('admin-queued')

    # a change made elsewhere shows on the card through the event stream
    c.go('#/connections')
    wait_text(f'{card("WEBCONN")} {t("comm-state")}', 'enabled')
    st, _ = c.api('PUT', '/connections/WEBCONN/comm', {'state': 'limited'})
    c.eq(200, st, 'Full Comm of WEBCONN limited over the API')
    wait_text(f'{card("WEBCONN")} {t("comm-state")}', 'limited')
    c.ok(True, 'its card shows limited without a reload (the comm event)')
    st, _ = c.api('PUT', '/connections/WEBCONN/comm', {'state': 'enabled'})
    wait_text(f'{card("WEBCONN")} {t("comm-state")}', 'enabled')

    # --- enabled again: the job runs to DONE on screen -------------------------------------------
    comm('AMTDEMO', 'comm-enable', 'enabled', 'queued jobs start')
    c.go('#/jobs')
    c.wait(lambda: row_state(job) == 'finished', what=f'job {job} finished on the Jobs page')
    c.go(f'#/jobs/{job}')
    wait_text(t('job-code'), 'DONE')
    c.ok(True, f'job {job} runs to DONE on screen once Full Comm is enabled')
    c.wait_for(t('tl-reported'))
    c.ok(True, 'its timeline shows the states the server reported')
    c.screenshot('admin-job-done')
    c.no_csp_violations('Connections, Jobs and the job page: no CSP violation')

    # --- an alert arrives live; acknowledged ---------------------------------------------------
    c.go('#/alerts')
    wait_text(t('open-heading'), 'Not acknowledged')
    failing = submit('AMTDEMO', 'RUN_FILENAMETEST.ps1', 'script')
    sel = f'{t("alerts-open")} {t("alert")}'
    c.wait(lambda: any(a.get_attribute('data-open') == 'true' and
                       a.find_elements('css selector', f'a[href="#/jobs/{failing}"]')
                       for a in c.finds(sel)), what=f'the alert of job {failing} to arrive live')
    c.ok(True, f'the alert of failed job {failing} shows among the open ones without a reload, linked to its job')
    alert = [a for a in c.finds(sel) if a.find_elements('css selector', f'a[href="#/jobs/{failing}"]')][0]
    aid = alert.get_attribute('data-id')
    c.screenshot('admin-alerts')
    c.click(f'{t("alert")}[data-id="{aid}"] {t("ack")}')
    c.wait_for(f'{t("alerts-acked")} {t("alert")}[data-id="{aid}"]')
    wait_text(f'{t("alerts-acked")} {t("alert")}[data-id="{aid}"] {t("alert-acked-by")}', 'by adam')
    c.ok(True, 'acknowledged, it moves below the open ones, acknowledged by adam')
    c.no_csp_violations('the Alerts page: no CSP violation')

    # --- a Batch User's password ---------------------------------------------------------------
    c.go('#/admin/batch-users')
    form = f'{t("bu-form")}[data-name="webbu"]'
    c.wait_for(form)
    before = text(f'{t("bu-row")}[data-name="webbu"] {t("bu-updated")}')
    c.type(f'{form} {t("bu-password")}', BU_PW)
    c.eq('password', c.find(f'{form} {t("bu-password")}').get_attribute('type'),
         'the password input hides what is typed')
    c.click(f'{form} {t("bu-set")}')
    wait_text(t('notices'), 'Batch User webbu: password set')
    c.ok(True, 'the page says webbu\'s password was set')
    c.wait_for(f'{t("bu-form")}[data-name="webbu"]')
    c.eq('', c.find(f'{t("bu-form")}[data-name="webbu"] {t("bu-password")}').get_attribute('value'),
         'the input is empty after sending')
    c.screenshot('admin-batch-users')
    logons = counters()['logons']
    job2 = submit('WEBCONN', 'REPORTTEST01')
    c.go('#/jobs')
    c.wait(lambda: row_state(job2) == 'finished', what=f'job {job2} of WEBCONN finished')
    c.go(f'#/jobs/{job2}')
    wait_text(t('job-code'), 'DONE')
    c.ok(True, f'the next job of WEBCONN ({job2}) runs to DONE')
    c.ok(counters()['logons'] > logons,
         'the simulator saw a logon as webbu, which only the new password opens')

    # --- API tokens: shown once, revoked with a confirmation -----------------------------------
    c.go('#/admin/tokens')
    c.type(t('new-token-name'), 'ci-browser')
    c.click(t('new-token-add'))
    token = wait_text(t('token-value'), 'amtacs_')
    c.ok(token.startswith('amtacs_') and len(token) == 50, 'a new token is shown once', token[:10])
    c.ok('shown this once' in text(t('token-shown-box')), 'with a warning that it is shown once')
    c.ok(c.finds(t('token-copy')), 'and a copy button')
    st, me = 0, None
    req = urllib.request.Request(f'{c.url}/api/v1/me', headers={'Authorization': f'Bearer {token}'})
    with urllib.request.urlopen(req, timeout=30) as r:
        me = json.loads(r.read())
    c.eq('token:ci-browser', me['user'], 'the token works')
    c.screenshot('admin-token')
    c.click(t('token-done'))
    c.wait(lambda: not c.finds(t('token-value')), what='the token to be gone from the page')
    c.ok(token not in c.driver.page_source, 'once stored, the token is no longer in the page')
    c.click(f'{t("token-row")}[data-name="ci-browser"] {t("token-revoke")}')
    c.wait_visible(t('confirm-dialog'))
    c.click(t('confirm-ok'))
    c.wait(lambda: not c.finds(f'{t("token-row")}[data-name="ci-browser"] {t("token-revoke")}'),
           what='the token revoked')
    req = urllib.request.Request(f'{c.url}/api/v1/me', headers={'Authorization': f'Bearer {token}'})
    try:
        urllib.request.urlopen(req, timeout=30)
        revoked = False
    except urllib.error.HTTPError as e:
        revoked = e.code == 401
    c.ok(revoked, 'the revoked token is refused (401)')

    # --- console users ---------------------------------------------------------------------------
    c.go('#/admin/users')
    c.type(t('new-user-name'), 'nina')
    c.find(f'{t("new-user-role")} option[value="operator"]').click()
    c.type(t('new-user-password'), 'nina-Secret-Pass-9')
    c.click(t('new-user-add'))
    c.wait_for(f'{t("user-row")}[data-name="nina"]')
    c.eq('operator', c.find(f'{t("user-row")}[data-name="nina"] {t("user-role")}').get_attribute('value'),
         'a console user is created with a role')
    c.click(f'{t("user-row")}[data-name="nina"] {t("user-disable")}')
    c.wait_visible(t('confirm-dialog'))
    c.click(t('confirm-ok'))
    wait_text(f'{t("user-row")}[data-name="nina"] {t("user-status")}', 'disabled')
    c.ok(True, 'and disabled')
    c.screenshot('admin-users')

    # --- connection groups: set, changed, a bad member refused, deleted ----------------------------
    c.go('#/admin/groups')
    c.wait_for(t('admin-section-groups'))
    c.wait_for(t('new-group-form'))
    c.type(t('new-group-name'), 'PAIR')
    c.type(t('new-group-connections'), 'WEBCONN AMTDEMO')
    c.click(t('new-group-add'))
    wait_text(t('notices'), 'Group PAIR created: WEBCONN, AMTDEMO')
    pair = f'{t("group-row")}[data-name="PAIR"]'
    wait_text(f'{pair} {t("group-connections")}', 'WEBCONN, AMTDEMO')
    c.ok(True, 'an admin creates group PAIR (WEBCONN, AMTDEMO): the page lists it, members in order')
    c.eq('0', text(f'{pair} {t("group-unfinished")}'), 'with no unfinished job')
    c.type(f'{pair} {t("group-members")}', 'AMTDEMO, WEBCONN')
    c.click(f'{pair} {t("group-save")}')
    wait_text(t('notices'), 'Group PAIR changed: AMTDEMO, WEBCONN')
    wait_text(f'{pair} {t("group-connections")}', 'AMTDEMO, WEBCONN')
    c.ok(True, 'its members set in another order: changed')
    c.type(t('new-group-name'), 'BAD')
    c.type(t('new-group-connections'), 'AMTDEMO NOPE')
    c.click(t('new-group-add'))
    wait_text(t('notices'), "connection 'NOPE' is not known")
    c.ok(not c.finds(f'{t("group-row")}[data-name="BAD"]'),
         'a member that is not a connection: the database\'s message, no group')
    c.type(t('new-group-name'), 'SPARE')
    c.type(t('new-group-connections'), 'AMTDEMO')
    c.click(t('new-group-add'))
    c.wait_for(f'{t("group-row")}[data-name="SPARE"]')
    c.click(f'{t("group-row")}[data-name="SPARE"] {t("group-delete")}')
    c.wait_visible(t('confirm-dialog'))
    c.click(t('confirm-ok'))
    c.wait(lambda: not c.finds(f'{t("group-row")}[data-name="SPARE"]'), what='group SPARE deleted')
    c.ok(True, 'group SPARE is deleted after a confirmation')
    c.screenshot('admin-groups')
    c.no_csp_violations('the groups section: no CSP violation')

    # --- the audit log ---------------------------------------------------------------------------
    c.go('#/admin/audit')
    c.wait_for(t('audit-row'))
    whats = [e.text for e in c.finds(t('audit-what'))]
    for action in ('comm', 'ack', 'batch_user_set', 'token_create', 'token_revoke', 'user_add', 'user_disable',
                   'group_set', 'group_delete'):
        c.ok(action in whats, f'the audit log shows {action}', whats)
    c.screenshot('admin-audit')

    # the Batch User's password is nowhere in the page
    for section in ('batch-users', 'users', 'tokens', 'groups', 'audit'):
        c.go(f'#/admin/{section}')
        c.wait_for(t(f'admin-section-{section}'))
        c.wait(lambda: c.finds(f'{t(f"admin-section-{section}")} h2'), what=f'the {section} section')
        values = c.driver.execute_script(
            'return [...document.querySelectorAll("input")].map((i) => i.value).join("\\n")')
        c.ok(BU_PW not in c.driver.page_source and BU_PW not in values,
             f'the Batch User\'s password is nowhere in the page ({section})')
    c.no_csp_violations('every page the admin opened: no CSP violation')
except Exception:
    c.ok(False, 'the scenario ran to its end', traceback.format_exc())
    c.screenshot('admin-failure')
finally:
    c.done()
