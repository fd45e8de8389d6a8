"""The web page at GET /, in a real headless browser: upload a photo, see its breeds; send a GIF, see why not.

Driven by Selenium through Debian's chromium and chromedriver, which `.ci/run` installs; without them the
test skips, saying so. The page is served by PredictFunction through the offline API front, and posts to the
same front's POST /predictions, as it would to API Gateway with AuthMode=NONE. (A token pasted into the
page's field goes out as ``Authorization: Bearer``, for AuthMode=JWT; offline there is no authorizer to check
it, so that path is not exercised here.) The screenshot lands in .offline/test-artifacts/web-page.png.
"""

from __future__ import annotations

import shutil
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
