"""A real headless Chromium (Debian's chromium and chromedriver), driven with selenium, for the console's tests.

Screenshots go to build/console-screenshots/ (git-ignored): the artifacts of a run."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "console-screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Text a sandbox might write: it must show as these characters, and neither run nor become elements.
HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
WAIT_S = 90  # a generous bound for a condition on a loaded machine; never a timed assertion
# Records every CSP violation and whether any injected script ran (it would set window.__xss).
WATCH = """
window.__violations = window.__violations || [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
"""


def missing() -> str:
    """What is not installed, or an empty string."""
    return " ".join(p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p))


class Browser:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._profile = tempfile.mkdtemp(prefix="sg-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1400,1000", f"--user-data-dir={self._profile}", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update"):  # fmt: skip
            options.add_argument(arg)
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))

    def open(self, fragment: str = "") -> None:
        self.driver.get(f"{self.base_url}/console/{fragment}")
        self.driver.execute_script(WATCH)

    def go(self, fragment: str) -> None:
        """Another view of the page already open (the #fragment; the page is not reloaded)."""
        self.driver.execute_script("location.hash = arguments[0];", fragment)

    def sign_in(self, token: str) -> None:
        self.open()
        self.find("#token").send_keys(token)
        self.find("#signin-button").click()
        self.wait(lambda: self.driver.execute_script("return document.body.dataset.ready === 'true'"), "signed in")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
        """Polls `condition` every 20 ms until it is truthy (its value) or `timeout` passes (AssertionError)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = condition()
            except Exception:  # an element replaced while read: try again
                found = None
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_css(self, css: str, what: str, text: str = "") -> WebElement:
        def present() -> WebElement | None:
            return next((e for e in self.find_all(css) if text in e.text), None)

        return self.wait(present, what)  # type: ignore[no-any-return]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def script(self, source: str, *args: object) -> Any:
        return self.driver.execute_script(source, *args)

    def no_script_ran(self) -> None:
        """Asserts that no injected script ran and that the page broke none of its CSP's rules."""
        assert self.script("return window.__xss") is None, "an injected script ran"
        assert self.script("return window.__violations") == [], "the page broke its own Content-Security-Policy"

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self._profile, ignore_errors=True)
