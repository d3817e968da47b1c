"""Scenario: logging in (driven by tests/integration/test_console_login.sh).

Environment: AMTACS_WEB_URL, AMTACS_USER and AMTACS_PASSWORD (a viewer),
AMTACS_THROTTLED_USER (a user this scenario fails to log in as until the
server throttles it), AMTACS_JOB (a job whose page is the target kept).
"""
import os
import re
import traceback

from console import Console

USER = os.environ['AMTACS_USER']
PW = os.environ['AMTACS_PASSWORD']
TOM = os.environ['AMTACS_THROTTLED_USER']
JOB = os.environ['AMTACS_JOB']
TRIES = 20  # failures before giving up on seeing the throttle (the 6th is already refused)

c = Console()
t = c.t


def message():
    m = c.find(t('login-message'))
    return m.get_attribute('data-state'), c.text_of(t('login-message'))


try:
    # --- a wrong password -----------------------------------------------------------------
    c.open('#/jobs')
    c.wait_visible(t('login-form'))
    c.login(USER, 'not-the-password', expect_ok=False)
    c.wait(lambda: message()[0] == 'wrong', what='the wrong password message')
    c.eq('Wrong user name or password.', message()[1], 'a wrong password: a clear message')
    c.ok(c.find(t('login-password')).get_attribute('value') == '', 'the password field is emptied')
    c.ok(c.find(t('login-message')).get_attribute('role') == 'alert', 'the message is announced (role=alert)')
    c.ok(not c.find(t('logout')).is_displayed(), 'no Log out button before login')
    c.screenshot('login-wrong')

    # --- repeated failures: throttled ------------------------------------------------------
    states = []
    for i in range(TRIES):
        c.wait(lambda: c.find(t('login-submit')).is_enabled(), what='the submit button')
        # the message is marked unanswered; the page rewrites it with the answer
        c.driver.execute_script('document.querySelector(arguments[0]).dataset.state = "asked"',
                                t('login-message'))
        c.type(t('login-user'), TOM)
        c.type(t('login-password'), 'wrong-again-and-again')
        c.click(t('login-submit'))
        c.wait(lambda: message()[0] in ('wrong', 'throttled'), what='the answer to the login')
        states.append(message()[0])
        # throttled: tried again after each wait until the wait is long enough
        # (4 s) to see the countdown surely
        if message()[0] == 'throttled' and int(re.search(r'in (\d+) second', message()[1]).group(1)) >= 4:
            break
    c.note(f'answers to the failed logins: {" ".join(states)}')
    c.eq('throttled', states[-1], f'repeated failures are throttled ({len(states)} tries)')
    text = message()[1]
    c.ok(re.fullmatch(r'too many failed logins for this user name or from this address: '
                      r'try again in \d+ seconds?', text),
         'the server\'s throttling message, with the wait, is shown', text)
    c.ok(not c.find(t('login-submit')).is_enabled() and
         c.text_of(t('login-submit')).startswith('Wait '),
         'the button counts the wait down', c.text_of(t('login-submit')))
    c.screenshot('login-throttled')
    c.no_csp_violations('the login page: no CSP violation')

    # --- the target kept across a login --------------------------------------------------------
    c.open(f'#/jobs/{JOB}')
    c.wait_visible(t('login-form'))
    c.ok(c.hash().startswith('#/login?next=') and f'jobs%2F{JOB}' in c.hash(),
         'a page asked for without a session: the login page, with the target', c.hash())
    c.login(USER, PW)
    c.wait_text(t('job-title'), f'Job {JOB}')
    c.eq(f'#/jobs/{JOB}', c.hash(), 'logging in returns to the target')

    # --- a session ended elsewhere ------------------------------------------------------------
    first = c.driver.current_window_handle
    c.driver.switch_to.new_window('tab')
    c.open('#/jobs')
    c.wait_text(t('me'), USER)
    c.click(t('logout'))
    c.wait_visible(t('login-form'))
    c.ok(True, 'logged out in another tab (the same session)')
    c.driver.close()
    c.driver.switch_to.window(first)
    # the first tab learns it from its event stream (the server checks sessions every 5 s)
    c.wait(lambda: c.finds(t('login-form')), what='the login page in the first tab')
    c.ok(True, 'the first tab goes to the login page by itself')
    c.ok(c.hash().startswith('#/login?next=') and f'jobs%2F{JOB}' in c.hash(),
         'with the target kept', c.hash())
    c.wait(lambda: message()[0] == 'expired', what='the session-ended message')
    c.eq('Your session has ended; log in again.', message()[1], 'saying the session has ended')
    c.ok(not c.find(t('me')).is_displayed() and not c.find(t('logout')).is_displayed(),
         'nobody is shown as logged in, no Log out')
    c.screenshot('login-expired')
    c.login(USER, PW)
    c.wait_text(t('job-title'), f'Job {JOB}')
    c.eq(f'#/jobs/{JOB}', c.hash(), 'logging in again returns to the target')

    # --- an API call after the session ended (not the stream): the same ---------------------
    status, _ = c.api('POST', '/logout')
    c.eq(200, status, 'the session ends (logout through the API, as another program would)')
    c.go('#/jobs')
    c.wait(lambda: c.finds(t('login-form')), what='the login page after a 401')
    c.ok('next=%23%2Fjobs' in c.hash() and 'expired=1' in c.hash(),
         'the 401 of the next call sends to the login page, target kept', c.hash())
    c.no_csp_violations('every page visited: no CSP violation')
except Exception:  # a wait that ran out, an element missing: the scenario fails, saying where
    c.ok(False, 'the scenario ran to its end', traceback.format_exc())
    c.screenshot('login-failure')
finally:
    c.done()
