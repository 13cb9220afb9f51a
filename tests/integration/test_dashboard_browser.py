"""The dashboard in a real browser: headless Chromium against a real dcenter and two dworkers.

It checks what a person would: both workers appear, and a progress bar moves while a ``map``
runs. A screenshot of the page goes to the test's tmp dir (its path is printed; run with -s).
Needs Debian's ``chromium`` and ``chromium-driver``; without them the test skips and says so.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from dist_center.placement import AHEAD_PER_THREAD

pytestmark = pytest.mark.timeout(180)

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
START_TIMEOUT = 30.0

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium and its driver are not installed "
           "(apt-get install chromium chromium-driver)")


class Server:
    """A dcenter or dworker in its own process group, so teardown ends it and its children."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DIST_TOKEN", None)
        env.pop("DIST_TOKEN_FILE", None)
        self.process = subprocess.Popen([sys.executable, "-m", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, prefix: str) -> str:
        """The rest of the first output line starting with ``prefix``."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise AssertionError(f"no {prefix!r} from {' '.join(self.process.args[2:])}:\n"
                             + "".join(self.output))

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass


@pytest.fixture
def cluster():
    """``(center address, dashboard url, worker addresses)`` of a fresh cluster."""
    servers: list[Server] = []
    try:
        center = Server("dist_center.cli", "--host", "127.0.0.1", "--port", "0",
                        "--dashboard-port", "0")
        servers.append(center)
        address = center.wait_for("Start center at ")
        url = center.wait_for("Dashboard at ")
        workers = [Server("dist_worker.cli", address, "--host", "127.0.0.1", "--nthreads", "1",
                          "--name", f"browser-worker-{i}") for i in range(2)]
        servers.extend(workers)
        worker_addresses = [worker.wait_for("Start worker at ") for worker in workers]
        for worker in workers:
            worker.wait_for("Registered with center at: ")
        yield address, url, worker_addresses
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-extensions",
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    # A process group of its own: teardown kills chromedriver and every Chromium it started.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"),
                      popen_kw={"start_new_session": True})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            try:
                os.killpg(service.process.pid, signal.SIGKILL)
            except (ProcessLookupError, AttributeError):
                pass


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def progress_of(driver, prefix: str) -> tuple[int, int] | None:
    """``(done, total)`` as the page's progress bar for ``prefix`` shows it."""
    bars = driver.find_elements("css selector", f'.progress-bar[data-prefix="{prefix}"]')
    if not bars:
        return None
    now, top = bars[0].get_attribute("aria-valuenow"), bars[0].get_attribute("aria-valuemax")
    return (int(now), int(top)) if now and top else None


@needs_chromium
def test_dashboard_shows_workers_and_live_progress(cluster, browser, tmp_path):
    from dist_client import Executor

    address, url, worker_addresses = cluster
    browser.get(url)
    assert browser.title == "dist dashboard"

    def worker_rows():
        rows = browser.find_elements("css selector", "#workers tbody tr")
        return rows if len(rows) == 2 else None
    rows = wait_until(worker_rows, 20, "both workers in the table")
    table = browser.find_element("css selector", "#workers").text
    for worker_address in worker_addresses:
        assert worker_address in table
    assert {row.get_attribute("data-address") for row in rows} == set(worker_addresses)
    assert "browser-worker-0" in table and "browser-worker-1" in table

    def dashboard_sleep(i):
        time.sleep(0.025)
        return i

    with Executor(address) as executor:
        futures = executor.map(dashboard_sleep, range(200))
        first = wait_until(lambda: (p := progress_of(browser, "dashboard_sleep")) and p[0] > 0
                           and p, 30, "the progress bar to start moving")
        second = wait_until(lambda: (p := progress_of(browser, "dashboard_sleep"))
                            and p[0] > first[0] and p, 30, "the progress bar to move again")
        assert first[0] < second[0] and first[1] == second[1] == 200
        assert first[0] < 200, "the first read should see the map still running"
        wait_until(lambda: browser.execute_script("return view.drawnBoxes.length") > 0, 10,
                   "tasks drawn in the task stream")
        screenshot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(screenshot))
        print(f"dashboard screenshot: {screenshot}")

        assert executor.gather(futures) == list(range(200))
        wait_until(lambda: progress_of(browser, "dashboard_sleep") == (200, 200), 10,
                   "the progress bar to reach 200 of 200")

    metrics = urllib.request.urlopen(url + "metrics", timeout=10).read().decode()
    assert re.search(r'^dist_tasks_finished_total\{prefix="dashboard_sleep"\} 200$', metrics,
                     re.MULTILINE), metrics
    assert re.search(r"^dist_task_duration_seconds_count (\d+)$", metrics, re.MULTILINE)


def dashboard_slow_inc(x, delay=0.0):
    time.sleep(delay)
    return x + 1


@needs_chromium
def test_tasks_waiting_ahead_show_in_their_own_column_not_as_processing(cluster, browser):
    from dist_client import Executor

    address, url, _ = cluster
    browser.get(url)

    def cell(address_, column):
        found = browser.find_elements(
            "css selector", f'#workers tr[data-address="{address_}"] td[data-column="{column}"]')
        return found[0].text if found else None

    with Executor(address) as executor:
        first = executor.submit(dashboard_slow_inc, 0, 20.0)
        line = [first]
        for _ in range(6):
            line.append(executor.submit(dashboard_slow_inc, line[-1]))
        ahead = str(min(len(line) - 1, AHEAD_PER_THREAD))  # a worker's line holds so many
        wait_until(lambda: any(cell(w, "ahead") == ahead for w in cluster[2]), 30,
                   f"{ahead} links waiting ahead in a worker's row")
        holder = next(w for w in cluster[2] if cell(w, "ahead") == ahead)
        # The slow link runs; the links behind it wait and are not counted as processing.
        assert cell(holder, "processing") == "1"
        wait_until(lambda: browser.find_element("css selector", "#summary-processing").text
                   == "1", 10, "the summary to count one task processing")
        assert browser.find_element("css selector", "#summary-waiting").text == "6"
        executor.cancel(line)
