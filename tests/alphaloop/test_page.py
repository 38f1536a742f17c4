"""The supervision page of ``alphaloop serve``: its checks over HTTP, and a real browser.

The HTTP tests speak to a running ``alphaloop serve`` with :mod:`urllib`: a control without
the token, with a wrong one, without or with a wrong CSRF field, session cookie, ``Origin`` or
``Host`` is refused with 403 and changes nothing, ``GET`` changes nothing, every value is
escaped. The browser test drives Debian's ``chromium`` through its ``chromedriver`` (started
by selenium) against the operations home: the figures shown are the ledger's and the pool's,
pressing pause (with the token) sets the kill switch, so the next ``alphaloop arena run``
commits its day without trading and says it is paused; resume, and the next run trades (the
control); approving a candidate moves it to probation. Without chromium the browser test
skips, saying so, except in CI (``$CI`` is ``true``), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

import pytest

from alphaloop.home import LabHome
from alphaloop.page import read_page, render_page
from arena.kill_switch import read_pause
from arena.ledger import Ledger
from evolution.store import GenePoolStore, TransitionRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ops_home import SPEC, stop_process

TOKEN = "test-control-token-1234567890"
EVIL = "<script>document.title='owned'</script>"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")


@dataclass
class Server:
    base: str
    token: str
    home: LabHome
    process: subprocess.Popen[str]


def _candidates(home: LabHome, n: int = 2) -> list[str]:
    """Move ``n`` alive genomes to candidate (as the gate would); the first gets a hostile
    description. Returns their ids."""
    with GenePoolStore(home.gene_pool_db) as store:
        alive = [row["genome_id"] for row in store.list_genomes("alive")][:n]
        assert len(alive) == n, "the operations home has too few alive genomes"
        store.transition(
            *(
                TransitionRecord(
                    genome_id=gid,
                    from_status="alive",
                    to_status="candidate",
                    reason="passed the gate (test)",
                )
                for gid in alive
            )
        )
    # The store has no writer of descriptions (they are derived when a genome is born): the
    # test plants one on its own copy, as a genome born from hostile input would carry.
    with sqlite3.connect(home.gene_pool_db) as db:
        db.execute("UPDATE genomes SET description=? WHERE genome_id=?", (EVIL, alive[0]))
    return alive


def _start(home: LabHome, env_token: str | None) -> Server:
    env = dict(os.environ)
    env.pop("ALPHALOOP_SERVE_TOKEN", None)
    if env_token is not None:
        env["ALPHALOOP_SERVE_TOKEN"] = env_token
    process = subprocess.Popen(
        [sys.executable, "-m", "alphaloop.cli", "--home", str(home.root), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.match(
        r"serving: (http://127\.0\.0\.1:\d+)/metrics \(lab home .*\) page \1/page control token "
        r"(.+)$",
        line.strip(),
    )
    if match is None:
        process.kill()
        raise AssertionError((line, process.communicate()[1]))
    said = match.group(2)
    if env_token is None:
        token = said
    else:
        assert said == "from $ALPHALOOP_SERVE_TOKEN", line
        assert env_token not in line
        token = env_token
    return Server(match.group(1), token, home, process)


@pytest.fixture
def server(ops_home: LabHome) -> Iterator[Server]:
    _candidates(ops_home)
    running = _start(ops_home, TOKEN)
    try:
        yield running
    finally:
        stop_process(running.process)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    try:
        with urlopen(Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def _post(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    request = Request(url, data=urlencode(form).encode(), headers=headers, method="POST")
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


def _state(home: LabHome) -> tuple[Any, ...]:
    """What a control could change: the pause flag, the journal, every genome's status."""
    with GenePoolStore(home.gene_pool_db) as store:
        statuses = tuple((g["genome_id"], g["status"], g["paused"]) for g in store.list_genomes())
        moves = len(store.transitions())
    journal = home.kill_switch_journal
    return (
        read_pause(home),
        journal.read_text() if journal.is_file() else None,
        statuses,
        moves,
    )


def _session(base: str) -> tuple[str, str, str]:
    """Open the page: return (its HTML, the session cookie header, the form's CSRF field)."""
    status, body, headers = _get(f"{base}/page")
    assert status == 200, body
    cookie = SimpleCookie(headers["Set-Cookie"])
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    csrf = re.findall(r'name="csrf" value="([0-9a-f]+)"', body)
    assert csrf and len(set(csrf)) == 1
    return body, f"alphaloop_session={cookie['alphaloop_session'].value}", csrf[0]


def test_controls_refuse_every_missing_or_wrong_credential_and_get_changes_nothing(
    server: Server,
) -> None:
    base, home = server.base, server.home
    before = _state(home)
    _body, cookie, csrf = _session(base)
    # GET never changes state: the page twice, a control path by GET (405), the index.
    assert _get(f"{base}/page")[0] == 200
    assert _get(f"{base}/page/pause?token={TOKEN}&csrf={csrf}")[0] == 405
    # Only the controls take POST: the page and the metrics refuse it.
    assert _post(f"{base}/page", {}, {})[0] == 405
    assert _post(f"{base}/metrics", {}, {})[0] == 405
    assert _state(home) == before
    host = urlsplit(base).netloc
    good = {"Cookie": cookie, "Origin": base, "Host": host}
    form = {"csrf": csrf, "token": TOKEN, "reason": "test"}
    refused = [
        ({k: v for k, v in form.items() if k != "token"}, good),
        ({**form, "token": "wrong"}, good),
        ({**form, "token": TOKEN[:-1]}, good),
        ({k: v for k, v in form.items() if k != "csrf"}, good),
        ({**form, "csrf": "0" * 64}, good),
        (form, {**good, "Cookie": "alphaloop_session=" + "A" * 32}),  # another session
        (form, {k: v for k, v in good.items() if k != "Cookie"}),
        (form, {**good, "Origin": "http://evil.example"}),
        (form, {k: v for k, v in good.items() if k != "Origin"}),  # no Origin, no Referer
        (form, {**good, "Host": "evil.example:80", "Origin": "http://evil.example:80"}),
    ]
    for path in ("/page/pause", "/page/approve", "/page/reject"):
        for data, headers in refused:
            status, text = _post(base + path, data, headers)
            assert status == 403, (path, data, headers, text)
            assert _state(home) == before, (path, data, headers)
    # The control: the same request with everything right is carried out.
    status, text = _post(f"{base}/page/pause", form, good)
    assert status == 200 and "PAUSED" in text, text
    pause = read_pause(home)
    assert pause is not None and pause.reason == "test" and pause.who.endswith("(page)")
    # A Referer of this page stands for a missing Origin.
    no_origin = {k: v for k, v in good.items() if k != "Origin"}
    status, text = _post(f"{base}/page/resume", form, {**no_origin, "Referer": f"{base}/page"})
    assert status == 200 and "resumed" in text, text
    assert read_pause(home) is None
    # Bad input to a permitted control: an error line, nothing changed.
    after = _state(home)
    status, text = _post(f"{base}/page/approve", {**form, "genome_id": "zzzz"}, good)
    assert status == 400 and "no single genome" in text, text
    status, text = _post(f"{base}/page/reject", {**form, "genome_id": "", "reason": ""}, good)
    assert status == 400, text
    assert _state(home) == after


def test_every_value_is_escaped_and_the_page_allows_no_script(server: Server) -> None:
    status, body, headers = _get(f"{server.base}/page")
    assert status == 200
    assert "<script" not in body.lower()
    assert "&lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in body
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["X-Frame-Options"] == "DENY"
    # A page asked for under another Host (DNS rebinding) is refused.
    status, body, _ = _get(f"{server.base}/page", {"Host": "evil.example:80"})
    assert status == 403 and "AlphaLoop" not in body


def test_a_home_without_stores_still_renders_a_page(tmp_path: Path) -> None:
    body = render_page(read_page(LabHome(tmp_path / "none")), csrf="0" * 64)
    assert "no committed day yet" in body and "no gene pool" in body
    assert 'data-paused="no"' in body and not (tmp_path / "none").exists()


# --------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    missing = [path for path in CHROMIUM if not Path(path).is_file()]
    why = ""
    if missing:
        why = (
            f"{', '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)"
        )
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            why = "selenium is not installed (pip install -e '.[dev]')"
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; in CI it must be (.ci/run installs it)")
        pytest.skip(why)
    return CHROMIUM


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[Any]:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="alphaloop-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = chromium[0]
    service = webdriver.ChromeService(executable_path=chromium[1])
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _press(driver: Any, form_class: str, token: str, **fields: str) -> str:
    """Fill the form of class ``form_class`` (the token, then ``fields``), submit, return the
    result line of the page that answers."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    form = driver.find_element(By.CSS_SELECTOR, f"form.{form_class}")
    for name, value in fields.items():
        box = form.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    form.find_element(By.NAME, "token").send_keys(token)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "result"))
    )
    return str(driver.find_element(By.ID, "result").text)


def _arena_run(home: LabHome, day: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alphaloop.cli",
            "--home",
            str(home.root),
            "arena",
            "run",
            "--date",
            day,
            "--data",
            SPEC,
            "--local",
            "--no-mlflow",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


def test_in_a_browser_the_page_shows_the_stores_and_pause_really_pauses_the_next_run(
    chromium: tuple[str, str], ops_home: LabHome, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    candidates = _candidates(ops_home)
    server = _start(ops_home, None)  # the token printed on the serving: line
    try:
        browser.get(f"{server.base}/page")
        assert browser.title == "AlphaLoop supervision"
        assert browser.find_elements(By.TAG_NAME, "script") == []
        # The accounts' figures are the ledger's.
        with Ledger(ops_home.ledger_db) as ledger:
            expected = {
                name: (snapshot.equity / 10.0 ** ledger.money_digits(name), day)
                for name, (day, snapshot) in ledger.last_equities().items()
            }
            fills = {name: len(ledger.fills(name)) for name in ledger.accounts()}
        shown = {
            el.get_attribute("data-account"): el.text
            for el in browser.find_elements(By.CSS_SELECTOR, '[data-field="equity"]')
        }
        assert shown == {name: f"{equity:,.2f}" for name, (equity, _) in expected.items()}
        shown_fills = {
            el.get_attribute("data-account"): int(el.text)
            for el in browser.find_elements(By.CSS_SELECTOR, '[data-field="fills"]')
        }
        assert shown_fills == fills
        assert (
            browser.find_element(By.ID, "last-day").text
            == max(day for _, day in expected.values()).isoformat()
        )
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline")) >= 3
        # The pool's counts are the store's.
        with GenePoolStore(ops_home.gene_pool_db) as store:
            genomes = store.list_genomes()
        counts = Counter(g["status"] for g in genomes)
        shown_counts = {
            el.get_attribute("data-status"): int(el.text)
            for el in browser.find_elements(By.CSS_SELECTOR, "[data-status]")
        }
        assert {k: v for k, v in shown_counts.items() if k != "paused"} == {
            status: counts.get(status, 0) for status in shown_counts if status != "paused"
        }
        assert counts["candidate"] == 2 and shown_counts["candidate"] == 2
        assert shown_counts["paused"] == sum(g["paused"] for g in genomes)
        # The hostile description is shown as text, not run.
        texts = [el.text for el in browser.find_elements(By.CSS_SELECTOR, ".description")]
        assert EVIL in texts
        assert browser.title == "AlphaLoop supervision"

        # Approve a candidate from the page: the pool shows it on probation.
        said = _press(browser, f"approve-{candidates[1]}", server.token, reason="looks sound")
        assert f"{candidates[1]}: candidate -> probation" in said, said
        with GenePoolStore(ops_home.gene_pool_db) as store:
            assert store.status_of(candidates[1]) == ("probation", False)
            move = store.transitions(candidates[1])[-1]
        assert move["reason"] == "looks sound" and move["actor"].endswith("(page)")
        browser.find_element(By.ID, "back").click()
        probation = [
            el.text for el in browser.find_elements(By.CSS_SELECTOR, ".probation .genome-id")
        ]
        assert probation == [candidates[1]]

        # A wrong token in the browser: refused, nothing paused.
        said = _press(browser, "pause", "not-the-token", reason="drill")
        assert "wrong control token" in said and read_pause(ops_home) is None
        browser.find_element(By.ID, "back").click()

        # Pause from the page: the kill switch is set; the next arena run does not trade.
        said = _press(browser, "pause", server.token, reason="browser drill")
        assert "PAUSED" in said, said
        pause = read_pause(ops_home)
        assert pause is not None and pause.reason == "browser drill"
        summary, stderr = _arena_run(ops_home, "2023-05-31")
        assert "paused: the lab is PAUSED" in stderr
        assert summary["paused"] is not None and summary["paused"]["reason"] == "browser drill"
        assert {name: a["trades"] for name, a in summary["accounts"].items()} == dict.fromkeys(
            summary["accounts"], 0
        )
        browser.find_element(By.ID, "back").click()
        state = browser.find_element(By.ID, "pause-state")
        assert state.get_attribute("data-paused") == "yes" and "browser drill" in state.text
        assert browser.find_element(By.ID, "last-day").text == "2023-05-31"

        # Resume from the page: the next run trades again (the control).
        said = _press(browser, "resume", server.token, reason="drill over")
        assert "resumed" in said, said
        assert read_pause(ops_home) is None
        summary, stderr = _arena_run(ops_home, "2023-06-01")
        assert "PAUSED" not in stderr and summary["paused"] is None
        assert sum(a["trades"] for a in summary["accounts"].values()) > 0
        browser.find_element(By.ID, "back").click()
        assert browser.find_element(By.ID, "pause-state").get_attribute("data-paused") == "no"
    finally:
        stop_process(server.process)
