"""The operator console in a real headless Chromium, against the real service with real sandboxes: sign in,
watch a session appear, see a deny from inside a sandbox arrive in the stream, answer an approval, add and
remove a rule, and see HTML a sandbox wrote shown as text. Screenshots: build/console-screenshots/."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium.webdriver.common.by import By

from tests.e2e.conftest import SandgateClient
from tests.e2e.test_approvals import CURL, Background, status_and_reason
from tests.support.browser import HOSTILE, Browser, missing
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

# From inside a sandbox: one request through the proxy; prints its status and the clock the moment it answered.
TIMED_REQUEST = """
import sys, time, urllib.error, urllib.request
try:
    status = urllib.request.urlopen(sys.argv[1], timeout=30).status
except urllib.error.HTTPError as error:
    status = error.code
print(status, time.time())
"""
# From inside a sandbox: a CONNECT to a host name made of HTML, with the session's own proxy credentials.
CONNECT_TO_HTML = """
import base64, socket, sys
creds = base64.b64encode(b"sandgate:" + open("/run/sandgate/token", "rb").read().strip()).decode()
s = socket.create_connection(("127.0.0.1", 3128), timeout=30)
s.sendall(("CONNECT <b>x</b>.test:443 HTTP/1.1\\r\\nHost: <b>x</b>.test:443\\r\\n"
           "Proxy-Authorization: Basic " + creds + "\\r\\n\\r\\n").encode())
sys.stdout.write(s.recv(200).decode("latin-1"))
"""


@contextmanager
def browser_on(proc: SandgateProcess) -> Iterator[Browser]:
    if missing():
        pytest.fail(f"the console's tests need {missing()}: apt-get install chromium chromium-driver")
    b = Browser(f"http://127.0.0.1:{proc.admin_port}")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture()
def browser(sandgate: SandgateProcess) -> Iterator[Browser]:
    with browser_on(sandgate) as b:
        yield b


@pytest.fixture()
def console(browser: Browser, sandgate: SandgateProcess) -> Browser:
    """A browser signed in to the console."""
    browser.sign_in(sandgate.admin_token)
    return browser


def streams_live(b: Browser) -> None:
    b.wait(lambda: b.find("#decisions-status").text == "live", "the decision stream to be live")
    b.wait(lambda: b.find("#approvals-status").text == "live", "the approvals stream to be live")


def test_sign_in_and_see_a_session_appear(browser: Browser, client: SandgateClient) -> None:
    browser.open()
    browser.screenshot("01-sign-in")
    browser.find("#token").send_keys("not-the-token")
    browser.find("#signin-button").click()
    browser.wait_css("#signin-error", "the refusal", text="refused")
    browser.sign_in(client.proc.admin_token)
    # The token is in this tab's sessionStorage only: not in the URL, localStorage or a cookie.
    token = client.proc.admin_token
    assert token not in browser.driver.current_url
    assert browser.script("return sessionStorage.getItem('sandgate.adminToken')") == token
    assert browser.script("return localStorage.length + document.cookie.length") == 0

    team = f"console-{uuid.uuid4().hex[:8]}"
    browser.go("#/sessions")
    browser.find("#label-filter").send_keys(f"team={team}")
    sid = client.create(labels={"team": team}, ttl_seconds=600).id
    row = browser.wait_css(f'#sessions-table tr[data-session="{sid}"]', "the new session's row", text="READY")
    assert [c.text for c in row.find_elements(By.TAG_NAME, "td")][5:9] == ["none", "enforce", "DENY", f"team={team}"]
    assert len(browser.find_all("#sessions-table tbody tr")) == 1  # the label filter leaves only it
    browser.screenshot("02-sessions")
    row.click()
    browser.wait_css("#session-fields dd", "the session's detail", text="READY")
    assert browser.find("#session-id").text == sid
    browser.screenshot("03-session-detail")
    browser.go("#/overview")
    browser.wait_css('#fleet .card[data-metric="sessions"]', "the fleet's numbers")
    browser.screenshot("04-overview")
    browser.no_script_ran()


def test_a_deny_from_a_sandbox_arrives_in_the_stream_within_a_second(
    console: Browser, client: SandgateClient, http_upstream: Upstream
) -> None:
    sid = client.create().id
    console.go("#/decisions")
    console.find("#filter-session").send_keys(sid)
    streams_live(console)
    url = f"http://other.test:{http_upstream.port}/denied"
    # The sandbox notes when its denied request's answer came; the page notes when the decision reached it.
    out = client.exec(sid, ["python3", "-c", TIMED_REQUEST, url], timeout_seconds=60).stdout.decode()
    status, finished_at = out.split()
    assert status == "403"
    destination = f"other.test:{http_upstream.port}"
    row = console.wait_css("#decisions-table tbody tr", "the deny in the stream", text=destination)
    delay = float(row.get_attribute("data-seen-at") or 0) / 1000 - float(finished_at)
    print(f"\nconsole: the deny reached the page {delay * 1000:.0f} ms after the sandbox's request finished")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1:6] == [sid, "deny", "host-not-allowed", "GET", destination]
    assert cells[7] == "403"
    reason = row.find_element(By.CSS_SELECTOR, ".reason")
    assert "reason-destination" in (reason.get_attribute("class") or "")  # deny reasons are colour-coded by kind
    console.screenshot("05-decisions")
    assert delay < 1.0, f"the deny took {delay:.3f} s to reach the console"  # the requirement
    # The session's pictures: its top destination, and a denied rate above zero in the last minutes.
    console.go(f"#/sessions/{sid}")
    console.wait_css("#session-top svg text", "the session's top destination", text=destination)
    denied = console.find("#session-rate polyline.denied").get_attribute("points") or ""
    assert len({point.split(",")[1] for point in denied.split()}) > 1  # not a flat line at zero
    console.screenshot("05b-session-pictures")


def test_an_approval_answered_in_the_console_releases_the_held_request(
    console: Browser, client: SandgateClient, http_upstream: Upstream
) -> None:
    sid = client.create(on_unlisted="ASK").id
    console.go("#/approvals")
    streams_live(console)
    held = Background(client, sid, f"{CURL} http://other.test:{http_upstream.port}/held")
    item = console.wait_css("#approvals-list li[data-approval]", "the held request's approval", text=sid)
    assert f"GET other.test:{http_upstream.port}" in item.text
    assert int(console.find("#approvals-badge").text) >= 1  # the inbox counts what waits
    console.screenshot("06-approval-pending")
    item.find_element(By.CSS_SELECTOR, "button[data-decision='allow_once']").click()
    assert status_and_reason(held.output())[0] == 200
    console.wait(lambda: sid not in console.find("#approvals-list").text, "the answered approval to leave")
    console.screenshot("07-approval-answered")
    console.no_script_ran()


def test_rules_are_added_and_removed_in_the_console(
    console: Browser, client: SandgateClient, http_upstream: Upstream
) -> None:
    sid = client.create().id
    console.go(f"#/sessions/{sid}")
    console.wait_css("#session-fields dd", "the session's detail", text="READY")
    console.find("#rule-host").send_keys("allowed.test")
    console.find("#rule-ports").send_keys("70000")
    console.find("#rule-add").click()
    ports_error = console.find('#rule-form [data-field="ports"]')
    message = console.wait(lambda: ports_error.text, "the API's error next to the ports field")
    assert "65535" in message  # the API's own words ("out of range 1-65535")
    assert console.find('#rule-form [data-field="_other"]').text == ""
    console.screenshot("08-rule-error")
    console.find("#rule-ports").clear()
    console.find("#rule-ports").send_keys(str(http_upstream.port))
    console.find("#rule-add").click()
    console.wait_css("#rule-status", "the rule to be applied", text="applied")
    console.wait_css("#rules-table tbody tr", "the rule in the table", text="allowed.test")
    assert console.find('#rule-form [data-field="ports"]').text == ""
    console.screenshot("09-rule-added")
    # Applied means every Envoy ACKed it: the sandbox reaches the host at once.
    fetch = f"curl -s -o /dev/null -w '%{{http_code}}' http://allowed.test:{http_upstream.port}/"
    assert client.sh(sid, fetch)[1] == "200"

    console.find("#rules-table tbody tr[data-host='allowed.test'] button").click()
    console.wait(lambda: not console.find_all("#rules-table tbody tr"), "the rule to be removed")
    assert client.sh(sid, fetch)[1] == "403"


def test_html_a_sandbox_writes_is_shown_as_text(
    console: Browser, client: SandgateClient, http_upstream: Upstream
) -> None:
    sid = client.create().id
    console.go("#/approvals")
    streams_live(console)
    post = [
        "curl",
        "-sS",
        "-H",
        "content-type: application/json",
        "--data-binary",
        "@-",
        "http://sandgate.internal/v1/rules",
    ]  # fmt: skip
    # A host carrying HTML is refused at the door: by the rule check for a proposal, by Envoy for a request.
    bad_host = json.dumps({"host": "<b>x</b>.test", "reason": "r"}).encode()
    assert json.loads(client.exec(sid, post, stdin=bad_host).stdout)["error"]["field"].endswith("host")
    assert client.exec(sid, ["python3", "-c", CONNECT_TO_HTML]).stdout.startswith(b"HTTP/1.1 400")
    # A reason is the sandbox's own words: it is stored as written, and the console must show it as text.
    proposal = json.dumps({"host": "other.test", "ports": [http_upstream.port], "reason": HOSTILE}).encode()
    assert json.loads(client.exec(sid, post, stdin=proposal).stdout)["approval"]["reason"] == HOSTILE
    item = console.wait_css("#approvals-list li[data-approval]", "the proposal", text=sid)
    assert item.find_element(By.CSS_SELECTOR, ".why").text == HOSTILE
    assert item.find_elements(By.CSS_SELECTOR, "img, script") == []
    console.screenshot("10-escaped-reason")
    console.no_script_ran()
    item.find_element(By.CSS_SELECTOR, "button[data-decision='deny']").click()
    console.wait(lambda: sid not in console.find("#approvals-list").text, "the denied proposal to leave")


def test_the_streams_reconnect_by_themselves(own_sandgate: SandgateProcess, http_upstream: Upstream) -> None:
    """The control plane goes away (kill -9) and comes back: the page follows its streams again unaided."""
    proc = own_sandgate
    with proc.client() as c:
        sid = c.create().id
    with browser_on(proc) as console:
        console.sign_in(proc.admin_token)
        console.go("#/decisions")
        streams_live(console)
        proc.stop(signal.SIGKILL)
        console.wait(lambda: console.find("#decisions-status").text == "reconnecting", "the page to notice")
        console.screenshot("12-reconnecting")
        proc.start()
        streams_live(console)
        destination = f"other.test:{http_upstream.port}"
        with proc.client() as c:
            c.exec(sid, ["curl", "-s", f"http://{destination}/after-restart"])
        console.wait_css("#decisions-table tbody tr", "a deny after the restart", text=destination)
        console.no_script_ran()
