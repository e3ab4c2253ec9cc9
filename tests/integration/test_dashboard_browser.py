"""`lanework dashboard` in a real browser (issue 14, item 3): Debian's
Chromium, headless, driven by Selenium (python3-selenium, chromium-driver;
scripts/install-deps.sh installs them). Opens every page and takes a
screenshot of each; retries a failed job by clicking its button; pauses and
resumes a queue by clicking; sees a live event arrive through the page's
EventSource; a payload and an error holding <script> and "><img onerror>
show as text and no alert fires.

Screenshots go to LANEWORK_SCREENSHOTS (default BUILD/dashboard-screenshots);
with LANEWORK_UPDATE_DOCS=1 the overview's is also written to
docs/dashboard.png (the README's picture). Skips (77) with the reason when
Chromium, its driver or Selenium is not installed."""
import os
import shutil
import signal
import sys
import time

import lwtest
from lwtest import check, wait_until
from test_dashboard import QUEUES, XSS, Dashboard, token_file, xss_job
from test_partitions import wait_done

CHROMIUM = os.environ.get('LANEWORK_CHROMIUM', '/usr/bin/chromium')
DRIVER = os.environ.get('LANEWORK_CHROMEDRIVER', '/usr/bin/chromedriver')
SOURCE = os.environ.get('LANEWORK_SOURCE_ROOT', os.path.join(os.path.dirname(__file__), '..', '..'))
SHOTS = os.environ.get('LANEWORK_SCREENSHOTS') or os.path.join(
    os.environ.get('LANEWORK_BUILD_ROOT', '/tmp'), 'dashboard-screenshots')


def import_selenium():
    """Selenium from wherever it is: Debian installs python3-selenium for the
    system python3 (/usr/lib/python3/dist-packages), which another python3
    first on PATH does not look in."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        sys.path.append('/usr/lib/python3/dist-packages')
    try:
        from selenium import webdriver  # noqa: F401
        return True
    except ImportError:
        return False


def skip_reason():
    for path, pkg in [(CHROMIUM, 'chromium'), (DRIVER, 'chromium-driver')]:
        if not os.access(path, os.X_OK):
            return '%s not found (apt-get install %s; scripts/install-deps.sh does)' % (path, pkg)
    if not import_selenium():
        return 'selenium not importable (apt-get install python3-selenium; scripts/install-deps.sh does)'
    return None


def browser(env):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
              '--window-size=1360,900', '--force-device-scale-factor=1', '--no-first-run',
              '--disable-extensions', '--user-data-dir=' + os.path.join(env.dir, 'chromium')]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(DRIVER), options=o)


def no_alert(drv, where):
    from selenium.common.exceptions import NoAlertPresentException
    try:
        a = drv.switch_to.alert
        text = a.text
        a.dismiss()
        raise lwtest.TestFailure('an alert fired on %s: %r' % (where, text))
    except NoAlertPresentException:
        pass


def test_dashboard_in_chromium(env):
    from selenium.webdriver.common.by import By
    os.makedirs(SHOTS, exist_ok=True)
    env.write_registry([env.tenant('t1', queues=dict(QUEUES, emails={}))])
    w = env.worker('--concurrency', '4', '--queue', 'default', '--queue', 'bulk', '--queue', 'emails')
    d = Dashboard(env)
    d.get('/')  # the first sample of each queue's rate
    t_first = time.monotonic()
    done = [env.enqueue('t1', 'record', {'order': i, 'sku': 'A-%03d' % i}, queue=q)
            for i, q in enumerate(['default', 'default', 'emails', 'bulk', 'emails', 'default'])]
    bad = xss_job(env)
    other = env.enqueue('t1', 'fail', {'error': 'SMTP 451: try again later'}, queue='emails', attempts=1)
    wait_done(env, 't1', done + [bad, other], 1)
    # Work waiting in a paused queue, for the lanes page.
    env.cli('pause', '--tenant', 't1', '--queue', 'bulk')
    for lane in ['customer-17', 'customer-17', 'customer-42', 'import-9']:
        env.enqueue('t1', 'record', {'lane': lane}, queue='bulk', lane=lane)
    time.sleep(max(0, 1.1 - (time.monotonic() - t_first)))
    base = 'http://127.0.0.1:%d' % d.port
    drv = browser(env)
    env.own(type('Quit', (), {'close': lambda self: drv.quit()})())
    drv.set_page_load_timeout(20)

    def open_page(path, name, *expect):
        drv.get(base + path)
        no_alert(drv, path)
        # A loaded page has its body; a busy machine may not be there yet.
        wait_until(lambda: drv.find_elements(By.TAG_NAME, 'body'), timeout=10, what='%s loaded' % path)
        text = drv.find_element(By.TAG_NAME, 'body').text
        for e in expect:
            check(e in text, '%s does not show %r:\n%s' % (path, e, text[:2000]))
        drv.save_screenshot(os.path.join(SHOTS, name + '.png'))
        return text

    open_page('/', 'overview', 't1', 'default', 'emails', 'bulk', 'paused')
    if os.environ.get('LANEWORK_UPDATE_DOCS') == '1':
        shutil.copy(os.path.join(SHOTS, 'overview.png'), os.path.join(SOURCE, 'docs', 'dashboard.png'))
    open_page('/t/t1', 'tenant', 'Pause', 'Resume')
    open_page('/t/t1/q/default', 'queue', done[0])
    open_page('/t/t1/lanes', 'lanes', 'customer-17', 'import-9')
    open_page('/workers', 'workers', w.name)
    # XSS: the markup shows as text, nothing runs, no element was injected.
    text = open_page('/t/t1/job/' + bad, 'job', XSS[0], XSS[1])
    check(not drv.find_elements(By.CSS_SELECTOR, 'main img, main script'),
          'the payload or error became elements')
    text = open_page('/t/t1/failed', 'failed', bad, other, XSS[0], 'SMTP 451')
    check(not drv.find_elements(By.CSS_SELECTOR, 'main img'), 'the error became an <img>')
    # Retry the failed job by clicking its button.
    row = drv.find_element(By.XPATH, '//tr[td/a[text()="%s"]]' % other)
    row.find_element(By.XPATH, './/button[text()="Retry"]').click()
    wait_until(lambda: any('job %s retried' % other in b.text for b in drv.find_elements(By.TAG_NAME, 'body')),
               timeout=10, what='the retry flash')
    check(env.redis.call('HGET', 'lw:{t1}:stats', 'retried_manual:emails') == '1', 'the retry reached Redis')
    wait_done(env, 't1', [other], 1)
    # Pause and resume a queue by clicking.
    drv.get(base + '/t/t1')
    row = drv.find_element(By.XPATH, '//tr[td/a[text()="default"]]')
    row.find_element(By.XPATH, './/button[text()="Pause"]').click()
    wait_until(lambda: env.redis.call('SISMEMBER', 'lw:{t1}:paused', 'default') == 1, timeout=10,
               what='default paused')
    row = drv.find_element(By.XPATH, '//tr[td/a[text()="default"]]')
    check('paused' in row.text, 'the page shows the pause: %r' % row.text)
    drv.save_screenshot(os.path.join(SHOTS, 'tenant-paused.png'))
    row.find_element(By.XPATH, './/button[text()="Resume"]').click()
    wait_until(lambda: env.redis.call('SISMEMBER', 'lw:{t1}:paused', 'default') == 0, timeout=10,
               what='default resumed')
    # A POST from the browser without the token is refused (a form of
    # another origin cannot know it).
    drv.execute_script("""
        var f = document.createElement('form'); f.method = 'post'; f.action = '/t/t1/q/default/pause';
        document.body.appendChild(f); f.submit();""")
    wait_until(lambda: '403' in drv.title, timeout=10, what='the 403 page')
    check(env.redis.call('SISMEMBER', 'lw:{t1}:paused', 'default') == 0, 'a tokenless POST paused')
    # A live event arrives without a reload.
    drv.get(base + '/t/t1/events')
    wait_until(lambda: drv.find_element(By.ID, 'live-state').text == 'live', timeout=10,
               what='the event stream open')
    t0 = time.monotonic()
    jid = env.enqueue('t1', 'record', {'note': XSS[1]})
    wait_until(lambda: drv.find_elements(By.LINK_TEXT, jid), timeout=10, what='the live event row')
    took = time.monotonic() - t0
    no_alert(drv, 'the live view')
    check(not drv.find_elements(By.CSS_SELECTOR, 'main img'), 'live event data became an <img>')
    time.sleep(0.5)
    drv.save_screenshot(os.path.join(SHOTS, 'events.png'))
    print('  live event shown %.2f s after the enqueue; screenshots in %s' % (took, SHOTS))
    d.stop()
    w.signal(signal.SIGTERM)
    w.wait()


def test_token_login_in_chromium(env):
    from selenium.webdriver.common.by import By
    env.write_registry([env.tenant('t1', queues=QUEUES)])
    tf = token_file(env, 'browser-token-42')
    d = Dashboard(env, '--token-file', tf)
    drv = browser(env)
    env.own(type('Quit', (), {'close': lambda self: drv.quit()})())
    drv.get('http://127.0.0.1:%d/t/t1' % d.port)
    check('Sign in' in drv.title, 'no sign-in page: %s' % drv.title)
    drv.save_screenshot(os.path.join(SHOTS, 'login.png'))
    drv.find_element(By.NAME, 'token').send_keys('wrong')
    drv.find_element(By.XPATH, '//button[text()="Sign in"]').click()
    wait_until(lambda: '401' in drv.title, timeout=10, what='the refusal')
    drv.get('http://127.0.0.1:%d/' % d.port)
    drv.find_element(By.NAME, 'token').send_keys('browser-token-42')
    drv.find_element(By.XPATH, '//button[text()="Sign in"]').click()
    wait_until(lambda: 'Overview' in drv.title, timeout=10, what='the overview after signing in')
    drv.get('http://127.0.0.1:%d/t/t1' % d.port)
    check('Sign in' not in drv.title, 'the cookie did not sign in')
    d.stop()


if __name__ == '__main__':
    why = skip_reason()
    if why:
        print('SKIP test_dashboard_browser: %s' % why)
        sys.exit(77)
    lwtest.run([test_dashboard_in_chromium, test_token_login_in_chromium])
