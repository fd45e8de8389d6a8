"""The web page at GET /, in a real headless browser: upload a photo, see its breeds; send a GIF, see why not.

Driven by Selenium through Debian's chromium and chromedriver, which `.ci/run` installs; without them the
test skips, saying so. The page is served by PredictFunction through the offline API front, and posts to the
same front's POST /predictions, as it would to API Gateway with AuthMode=NONE (the authorizers are tested in
test_api_auth.py). Its security headers are checked where they matter, in the browser: another origin cannot
frame it, and an inline script injected into it does not run. The screenshot lands in
.offline/test-artifacts/web-page.png.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from offline_stack.offline_api import offline_api
from offline_stack.sam_template import PROJECT_ROOT
from tests.support.models import CANNED_BREEDS, CannedModel

PHOTOS = PROJECT_ROOT / "tests" / "data" / "photos"
ARTIFACTS = PROJECT_ROOT / ".offline" / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
)


@pytest.fixture(scope="module")
def api():
    with offline_api(CannedModel()) as (front, server):
        yield front


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Headless, and off the network but for the page: no component updates, sync or background requests
    quiet = ("--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,900", *quiet):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def upload(browser, url: str, photo: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    shown = expected_conditions.visibility_of_element_located
    WebDriverWait(browser, 30).until(lambda driver: shown((By.ID, "result"))(driver) or shown((By.ID, "error"))(driver))
    return By


def test_an_uploaded_photo_is_shown_with_its_top_breeds_and_probability_bars(api, browser):
    By = upload(browser, f"{api.url}/", PHOTOS / "dog.128.jpg")
    rows = browser.find_elements(By.CSS_SELECTOR, "#breeds li")
    breeds = [row.find_element(By.CLASS_NAME, "breed").text for row in rows]
    assert breeds == [name for name, _, _ in CANNED_BREEDS[:5]]
    first = rows[0].find_element(By.CLASS_NAME, "probability").text
    assert first == f"{100 * CANNED_BREEDS[0][2]:.1f} %"
    bars = [row.find_element(By.CLASS_NAME, "bar").size["width"] for row in rows]
    assert bars == sorted(bars, reverse=True) and bars[0] > bars[-1] > 0
    assert browser.find_element(By.ID, "photo").get_attribute("src").startswith("blob:")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web-page.png"))


def test_a_refused_upload_shows_the_apis_reason_not_a_broken_page(api, browser, tmp_path):
    gif = tmp_path / "dog.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 64)
    By = upload(browser, f"{api.url}/", gif)
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and not browser.find_element(By.ID, "result").is_displayed()
    assert "UnsupportedMediaType, HTTP 415" in error.text and "image/jpeg" in error.text


INJECTION = (
    "const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s);"
)


def test_the_page_and_the_api_answer_with_their_security_headers(api):
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"{api.url}/", timeout=30) as page:  # noqa: S310 (loopback)
        policy = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy and "'sha256-" in policy
        assert (page.headers["X-Frame-Options"], page.headers["X-Content-Type-Options"]) == ("DENY", "nosniff")
        assert page.headers["Referrer-Policy"] == "no-referrer"
    request = urllib.request.Request(  # noqa: S310
        f"{api.url}/predictions", data=b"GIF89a", headers={"Content-Type": "image/gif"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert refused.value.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in refused.value.headers["Content-Security-Policy"]


def test_another_origin_cannot_frame_the_page(api, browser):
    from selenium.webdriver.common.by import By

    from offline_stack.loopback_server import LoopbackServer

    # Given a page of another origin (another port of loopback) that frames the web page
    framing = f"<html><body><iframe id='framed' src='{api.url}/' width=600 height=400></iframe></body></html>"

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [framing.encode()]

    with LoopbackServer(app, name="framing-page") as other_origin:
        browser.get(f"{other_origin.url}/")
        assert_not_rendered_in_frame(browser, By)


def assert_not_rendered_in_frame(browser, By) -> None:
    browser.switch_to.frame(browser.find_element(By.ID, "framed"))
    try:
        # Then the frame holds no part of it, however long one waits (the browser refused to render it there)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not browser.find_elements(By.ID, "file"):
            time.sleep(0.2)
        assert browser.find_elements(By.ID, "file") == []
    finally:
        browser.switch_to.default_content()


def test_an_inline_script_injected_into_the_page_does_not_run(api, browser):
    # The check can fail: on a page without the policy, the same injected script runs
    browser.get("data:text/html,<body>no policy here</body>")
    browser.execute_script(INJECTION)
    assert browser.execute_script("return window.injected") == 1
    # On the web page, the policy refuses any inline script but its own
    browser.get(f"{api.url}/")
    browser.execute_script(INJECTION)
    assert browser.execute_script("return window.injected === undefined") is True
