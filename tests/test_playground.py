"""The LangServe playground in a real headless Chromium: ask a question, see an answer with a citation."""

import shutil
import time
from pathlib import Path

import pytest

from test_server import start_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them)")


@pytest.fixture(scope="module")
def open_server(cli_env, kb):
    from langchain_core.documents import Document

    kb.ingest_documents([Document("The night train to Lisbon departs from platform 9 at 22:15.",
                                  metadata={"source": "trains.md"})], collection="playground")
    proc, url = start_server({**cli_env, "PGRAG_API_KEYS": ""})
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_playground_answers_with_a_citation(open_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{open_server}/rag/playground/")
    wait = WebDriverWait(browser, 60)
    question = wait.until(ready.element_to_be_clickable((By.ID, "#/properties/question-input")))
    question.send_keys("When does the night train to Lisbon depart?")
    collection = browser.find_element(By.ID, "#/properties/collection-input")
    collection.clear()
    collection.send_keys("playground")
    start = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Start")
    wait.until(lambda _: start.is_enabled())
    start.click()
    # The playground renders the streamed chunks; the last one holds the citations, each with its source.
    WebDriverWait(browser, 240).until(lambda d: '"citations"' in d.find_element(By.TAG_NAME, "body").text)
    time.sleep(1)  # let the stream finish rendering before the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "playground.png"))
    body = browser.find_element(By.TAG_NAME, "body").text
    citations = body[body.index('"citations"'):]
    assert '"number": 1' in citations and "trains.md" in citations
