"""The console's browser tests: a headless Chromium driven by Selenium.

Used by the scenarios in tests/browser/ (each run by a bash driver,
tests/integration/test_console_NAME.sh, which starts PostgreSQL, the
simulator, the daemon and amtacs-web and passes them in the environment):

    AMTACS_WEB_URL      amtacs-web's base URL (http://127.0.0.1:PORT)
    AMTACS_SCREENSHOTS  where screenshots go (default build/screenshots)

    c = Console()                     # headless chromium, 1280x900
    c.login('olga', 'secret')         # through the login page
    c.wait_text('[data-test="job-code"]', 'KILLED')
    c.no_csp_violations()             # raises if the browser logged one
    c.screenshot('jobs')              # AMTACS_SCREENSHOTS/jobs.png
    c.quit()

Tests wait for what the page shows (WebDriverWait), never for time.
Each check prints a TAP line ("ok - ..." / "not ok - ...") as the bash
harness does; the scenario exits 1 if any failed.
"""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = float(os.environ.get('AMTACS_BROWSER_WAIT', '30'))


class Console:
    def __init__(self, url=None, width=1280, height=900):
        self.url = (url or os.environ['AMTACS_WEB_URL']).rstrip('/')
        self.shots = os.environ.get('AMTACS_SCREENSHOTS', 'build/screenshots')
        self.passed = 0
        self.failed = 0
        self.csp_seen = []
        opts = webdriver.ChromeOptions()
        for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                  '--no-first-run', '--disable-extensions', '--disable-background-networking',
                  f'--window-size={width},{height}'):
            opts.add_argument(a)
        opts.binary_location = os.environ.get('AMTACS_CHROMIUM', '/usr/bin/chromium')
        opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        service = Service(executable_path=os.environ.get('AMTACS_CHROMEDRIVER',
                                                         '/usr/bin/chromedriver'))
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_window_size(width, height)

    # --- TAP ----------------------------------------------------------------------------
    def ok(self, cond, what, why=''):
        if cond:
            self.passed += 1
            print(f'ok - {what}', flush=True)
        else:
            self.failed += 1
            print(f'not ok - {what}', flush=True)
            if why:
                for line in str(why).splitlines():
                    print(f'#   {line}', flush=True)
        return cond

    def eq(self, expected, actual, what):
        return self.ok(expected == actual, what, f'expected: {expected!r}\nactual:   {actual!r}')

    def note(self, text):
        print(f'# {text}', flush=True)

    def done(self):
        self.quit()
        print(f'# browser: {self.passed} passed, {self.failed} failed', flush=True)
        sys.exit(1 if self.failed else 0)

    def quit(self):
        if self.driver:
            try:
                self.driver.quit()
            finally:
                self.driver = None

    # --- the page -----------------------------------------------------------------------
    def open(self, hash_route=''):
        self.driver.get(f'{self.url}/{hash_route}')

    def go(self, hash_route):
        """A route of the already loaded page (no reload)."""
        self.driver.execute_script('location.hash = arguments[0]', hash_route)

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def finds(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def t(self, name):
        """The CSS selector of a data-test hook."""
        return f'[data-test="{name}"]'

    def wait(self, cond, timeout=None, what='the condition'):
        try:
            return WebDriverWait(self.driver, timeout or WAIT, poll_frequency=0.05).until(
                lambda d: cond())
        except TimeoutException:
            raise TimeoutException(f'waited {timeout or WAIT} s for {what}')

    def wait_for(self, selector, timeout=None):
        return WebDriverWait(self.driver, timeout or WAIT, poll_frequency=0.05).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, selector)))

    def wait_visible(self, selector, timeout=None):
        return WebDriverWait(self.driver, timeout or WAIT, poll_frequency=0.05).until(
            EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))

    def text_of(self, selector):
        """textContent, exactly (WebDriver's .text trims and folds white space);
        None while there is no such element (or the page is redrawing it)."""
        try:
            els = self.finds(selector)
            return self.driver.execute_script('return arguments[0].textContent', els[0]) if els else None
        except StaleElementReferenceException:
            return None

    def wait_text(self, selector, text, timeout=None):
        """Waits until the element's text contains text; returns the text."""
        def cond():
            v = self.text_of(selector)
            return v if v is not None and text in v else False
        return self.wait(cond, timeout, f'{selector} to show {text!r}')

    def click(self, selector, timeout=None):
        """Clicks the element once it can be; one the page redraws between
        finding and clicking is found again."""
        def clicked(d):
            try:
                el = EC.element_to_be_clickable((By.CSS_SELECTOR, selector))(d)
                if el:
                    el.click()
                return el
            except StaleElementReferenceException:
                return False
        return WebDriverWait(self.driver, timeout or WAIT, poll_frequency=0.05).until(clicked)

    def type(self, selector, text):
        el = self.wait_visible(selector)
        el.clear()
        el.send_keys(text)
        return el

    def hash(self):
        return self.driver.execute_script('return location.hash')

    # --- the console ------------------------------------------------------------------
    def login(self, user, password, expect_ok=True):
        """Logs in through the login page (opening it if needed)."""
        if not self.finds(self.t('login-form')):
            self.open('#/login')
        self.wait_visible(self.t('login-user'))
        self.type(self.t('login-user'), user)
        self.type(self.t('login-password'), password)
        self.click(self.t('login-submit'))
        if expect_ok:
            self.wait_text(self.t('me'), user)

    def api(self, method, path, body=None):
        """A call to /api/v1 from the page (the browser's session and CSRF
        token): [status, parsed JSON or text]."""
        return self.driver.execute_async_script('''
            const [method, path, body, done] = arguments;
            // the page's own api.js (its URL carries the build's version), so
            // that the call has the session's CSRF token that module holds
            const src = document.querySelector('script[type=module]').src;
            import(new URL('api.js', src).href).then(async (m) => {
              try { done([200, await m.api(method, path, body === null ? undefined : body)]); }
              catch (e) { done([e.status || 0, e.detail || String(e)]); }
            });''', method, path, body)

    # --- checks -------------------------------------------------------------------------
    def browser_log(self):
        """The browser's console messages since the last call (kept for CSP)."""
        entries = self.driver.get_log('browser')
        for e in entries:
            if 'Content Security Policy' in e.get('message', ''):
                self.csp_seen.append(e['message'])
        return entries

    def no_csp_violations(self, what='no Content-Security-Policy violation in the browser log'):
        """Reads the browser log (and the page's securitypolicyviolation
        events, counted by a listener set before any script ran is not
        possible from outside: the log is where Chromium reports them)."""
        self.browser_log()
        return self.ok(not self.csp_seen, what, '\n'.join(self.csp_seen[:5]))

    def screenshot(self, name):
        os.makedirs(self.shots, exist_ok=True)
        path = os.path.join(self.shots, f'{name}.png')
        self.driver.save_screenshot(path)
        self.note(f'screenshot {path}')
        return path


def http_get(url, headers=None):
    """A plain request outside the browser: (status, body bytes)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def now():
    return time.monotonic()


def dumps(o):
    return json.dumps(o, sort_keys=True)
