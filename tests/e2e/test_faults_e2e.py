"""Faults in a real browser: a background job whose process is killed mid-run ends with a
failure message on the page (not an endless or silently vanished progress bar) while the
other views keep working; an upload that expired is named as expired."""

from __future__ import annotations

import signal
import time

import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import click_tab, job_processes, progress_value, settle, type_number, wait_graph
from safetensors.torch import save_file
from selenium.webdriver.common.by import By

from app import ids
from app.config import AppConfig
from app.main import create_app
from app.services.jobs import LOST_MESSAGE

pytestmark = pytest.mark.e2e


def _click_option(dash_duo, control_id: str, text: str) -> None:
    xpath = f"//*[@id='{control_id}']//label[contains(normalize-space(), '{text}')]"
    dash_duo.driver.find_element(By.XPATH, xpath).click()


def test_a_killed_job_shows_a_failure_and_the_page_keeps_working(
    dash_duo, tmp_path, no_leftover_jobs
):
    app = create_app(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=deernet&layer=fc1&tab=descramble")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc1", timeout=20)
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_SOURCE, "exact limit")
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_METHOD, "iterative")
    until(lambda: dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").is_displayed(), 10)
    # Cayley + Adam at a small rate runs to its step limit: a job to kill (the default
    # Riemannian L-BFGS converges here in about 120 steps)
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_OPTIMIZER, "Cayley + Adam")
    type_number(dash_duo, ids.INPUT_DESCRAMBLE_STEPS, "100000")
    type_number(dash_duo, ids.INPUT_DESCRAMBLE_LR, "0.0001")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_DESCRAMBLE.status}", "press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").click()
    until(
        lambda: progress_value(dash_duo, ids.JOB_DESCRAMBLE.progress) > 0,
        timeout=60,
        msg="the progress bar never moved",
    )
    jobs = job_processes()
    assert len(jobs) == 1, jobs
    jobs[0].send_signal(signal.SIGKILL)  # the worker dies mid-job, as under the OOM killer
    started = time.monotonic()
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_DESCRAMBLE_ALERT}", "process ended unexpectedly", timeout=20
    )
    noticed = time.monotonic() - started
    assert dash_duo.find_element(f"#{ids.DIV_DESCRAMBLE_ALERT}").text.endswith(
        LOST_MESSAGE.rsplit(" ", 4)[-1]
    )
    until(lambda: dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").is_enabled(), 20)
    progress = dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.progress_div}")
    assert not progress.is_displayed()  # no endless progress bar
    assert noticed < 10, noticed
    # the other views still work
    click_tab(dash_duo, "Spectrum")
    wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: g["traces"][0]["n"] == 80)
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_an_expired_upload_is_named_as_expired(dash_duo, tmp_path):
    model = tmp_path / "short_lived.safetensors"
    save_file({"enc.weight": torch.randn(6, 4)}, str(model))
    app = create_app(AppConfig(models=["digits"], upload_dir=tmp_path / "up", upload_ttl_s=3))
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.INPUT_UPLOAD_FILE}", timeout=20)
    dash_duo.find_element(f"#{ids.INPUT_UPLOAD_FILE}").send_keys(str(model))
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_UPLOAD_STATUS}", "Opened short_lived.safetensors", timeout=30
    )
    until(lambda: "model=upload-" in dash_duo.driver.current_url, timeout=20)
    link = dash_duo.driver.current_url
    time.sleep(3.5)  # past the upload's time to live
    dash_duo.driver.get(link)
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_ALERT_GLOBAL}", "'short_lived.safetensors' has expired", timeout=20
    )
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "digits", timeout=20)
    options = dash_duo.find_element(f"#{ids.DROPDOWN_MODEL_SELECT}").text
    assert "short_lived" not in options
    settle(dash_duo)
    assert dash_duo.get_logs() == []
