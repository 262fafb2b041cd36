"""The cockpit in real headless Chromium: log in, live trend, acknowledge, e-signed release."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI

from biopilot.store import Historian

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def server(make_app: Callable[..., FastAPI], request: pytest.FixtureRequest) -> Iterator[str]:
    """Serve the app with uvicorn on 127.0.0.1 (ephemeral port) in a thread; yield its URL.

    Indirect parameter ``{"panels": True}``: store estimates and a controller decision and
    deploy an MSPC model first.
    """
    uvicorn = pytest.importorskip("uvicorn")
    options: dict[str, Any] = {}
    if getattr(request, "param", {}).get("panels"):
        request.getfixturevalue("seeded")
        options["mspc_model"] = request.getfixturevalue("mspc_model_file")
    app = make_app(live_interval_s=0.2, live_max_s=60.0, **options)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            timeout_graceful_shutdown=1, lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):  # wait for the socket, not for a time
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    """A Chromium page (Playwright) on the cockpit."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)  # generous: CI machines may be loaded
        pg.goto(server)
        yield pg
        browser.close()


def log_in(page: Any, user: Any) -> None:
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#trend .main-svg")
    page.wait_for_selector("#record-head:has-text('record digest')")


def trend_length(page: Any) -> int:
    return int(page.evaluate("document.getElementById('trend').data[0].x.length"))


def test_operator_sees_a_live_trend_and_acknowledges_an_alarm(
    page: Any, db: Path, demo: dict[str, Any], tmp_path: Path
) -> None:
    log_in(page, demo["operator"])
    page.wait_for_selector("#live-dot.on")
    before = trend_length(page)
    assert before > 100
    page.screenshot(path=str(tmp_path / "1-logged-in.png"), full_page=True)

    with Historian(db) as h:  # the plant goes on: five new minutes of DO
        info = h.batch("BR-01-S1")
        last = h.read_tag(info.id, "do_pct").index[-1]
        new = pd.DataFrame({"time_utc": [last + pd.Timedelta(minutes=i) for i in range(1, 6)],
                            "tag": "do_pct", "value": [41.0, 42.0, 43.0, 44.0, 45.5]})
        h.write_samples(info.id, info.unit, new)
    # the page's CSP forbids eval, so wait on the DOM rather than with wait_for_function
    page.wait_for_selector(".tile .v[data-tag=do_pct]:text-is('45.50')")
    assert trend_length(page) == before + 5
    ys = page.evaluate("document.getElementById('trend').data[0].y.slice(-1)")
    assert ys == [45.5]
    page.screenshot(path=str(tmp_path / "2-live-update.png"), full_page=True)

    page.click("button[data-alarm='ph.HI']")
    page.fill("#ack-reason", "pH probe checked against the offline sample")
    page.click("#ack-ok")
    page.wait_for_selector("#alarms tr.state-ack_active[data-alarm='ph.HI']")
    assert "audit entry" in page.text_content("#alarm-msg")
    page.wait_for_selector("#audit tbody tr:first-child:has-text('alarm_acknowledge')")
    page.screenshot(path=str(tmp_path / "3-acknowledged.png"), full_page=True)
    with Historian(db) as h:
        from biopilot.store.audit import AuditTrail

        last_entry = AuditTrail(h).entries()[-1]
    assert (last_entry.actor, last_entry.action) == ("operator", "alarm_acknowledge")
    assert last_entry.reason == "pH probe checked against the offline sample"


def test_qa_signs_the_release_and_sees_it_invalidated_after_an_edit(
    page: Any, db: Path, demo: dict[str, Any], tmp_path: Path
) -> None:
    qa = demo["qa_approver"]
    log_in(page, qa)
    assert page.locator("button[data-alarm]").count() == 0  # QA may not acknowledge
    page.select_option("#meaning", "approved")
    page.fill("#sign-comment", "batch record reviewed")
    page.fill("#sign-password", qa.password)
    page.click("#sign-form button[type=submit]:enabled")  # enabled once the digest is loaded
    page.wait_for_selector("#signatures li.valid")
    assert "Quincy Approver" in page.text_content("#signatures")
    page.screenshot(path=str(tmp_path / "4-signed.png"), full_page=True)

    with Historian(db) as h:  # a later change to the record
        h.add_record(h.batch("BR-01-S1").id, "deviation", {"text": "late deviation"}, "engineer")
    page.reload()
    page.wait_for_selector("#signatures li.invalidated")
    assert "changed since signing" in page.text_content("#signatures")
    page.screenshot(path=str(tmp_path / "5-invalidated.png"), full_page=True)
    page.click("#logout")
    page.wait_for_selector("#login-view:not(.hidden)")
    assert page.is_hidden("#cockpit")


@pytest.mark.parametrize("server", [{"panels": True}], indirect=True)
def test_unit_panels_show_estimates_mspc_controller_and_qc(
    page: Any, demo: dict[str, Any], tmp_path: Path
) -> None:
    log_in(page, demo["process_engineer"])
    page.wait_for_selector("#estimates .main-svg")
    names = page.evaluate("document.getElementById('estimates').data.map(t => t.name)")
    assert names == ["low", "interval", "estimate", "measured"]
    page.wait_for_selector("#mspc .main-svg")
    page.wait_for_selector("#mspc-contrib .main-svg")
    assert "training batches" in page.text_content("#mspc-note")
    mspc = page.evaluate("document.getElementById('mspc').data.map(t => t.name || 'limit')")
    assert mspc.count("limit") == 4 and {"T2", "SPE"} <= set(mspc)
    page.wait_for_selector("#controller-mode:text-is('advisory')")
    assert "feed_bolus_l" in page.text_content("#controller-rec")
    page.wait_for_selector("#qc tr[data-record='2'] img.overlay")
    page.wait_for_selector("#qc-note:has-text('Disposition: pass')")
    qc_row = page.text_content("#qc tr[data-record='2']")
    assert "2 % in unsplit clumps" in qc_row and "hologram agreement 0.9100" in qc_row
    width = 0
    for _ in range(100):  # the CSP forbids wait_for_function's eval: poll the image instead
        width = page.evaluate("document.querySelector('#qc img.overlay').naturalWidth")
        if width:
            break
        page.wait_for_timeout(100)
    assert width == 64  # the stored overlay PNG, fetched with the session cookie
    page.screenshot(path=str(tmp_path / "6-unit-panels.png"), full_page=True)
