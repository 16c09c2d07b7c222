"""Faults in background jobs, through Dash's own HTTP endpoint (Flask test client), on the
default DiskcacheManager: a job whose process is killed mid-run ends as a failed run with a
message (not an endless or silently vanished progress bar), a cancelled job stays a
cancellation, and the app keeps serving the page and the other views meanwhile."""

from __future__ import annotations

import json
import re
import signal
import time
from typing import Any

import psutil
import pytest

from app import ids
from app.config import AppConfig
from app.main import create_app
from app.services.jobs import LOST_JOB, LOST_MESSAGE, is_lost_job
from app.storage.session import SESSION_COOKIE
from app.web.job_manager import WatchedDiskcacheManager

MODEL, LAYER = "deernet", "fc1"  # 80 x 256: one Cayley/Adam step takes milliseconds


class Page:
    """One page load: its session cookie, end_id and the callback map."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.server.test_client()
        html = self.client.get("/").get_data(as_text=True)
        config = re.search(
            r'<script id="_dash-config" type="application/json">(.*?)</script>', html
        )
        assert config, "the index page has no _dash-config"
        self.end_id = json.loads(config.group(1))["end_id"]
        self.session = self.client.get_cookie(SESSION_COOKIE).value

    def callback(self, output_prefix: str, trigger: str) -> tuple[str, dict]:
        for key, spec in self.app.callback_map.items():
            if key.startswith(output_prefix) and any(i["id"] == trigger for i in spec["inputs"]):
                return key, spec
        raise KeyError(output_prefix)

    def body(self, key: str, spec: dict, inputs: list, state: list) -> dict:
        if key.startswith(".."):  # several outputs: "..a.prop...b.prop.."
            parts = [o.split("@")[0].partition(".") for o in key[2:-2].split("...")]
            outputs: Any = [{"id": i, "property": p} for i, _, p in parts]
        else:
            out_id, _, prop = key.split("@")[0].partition(".")
            outputs = {"id": out_id, "property": prop}
        return {
            "output": key,
            "outputs": outputs,
            "inputs": [dict(i, value=v) for i, v in zip(spec["inputs"], inputs, strict=True)],
            "state": [dict(s, value=v) for s, v in zip(spec["state"], state, strict=True)],
            "changedPropIds": [f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"],
        }

    def post(self, body: dict, **args: str) -> dict:
        res = self.client.post(
            "/_dash-update-component", json=body, query_string={"endId": self.end_id, **args}
        )
        assert res.status_code in (200, 204), res.get_data(as_text=True)[-2000:]
        return res.get_json() if res.status_code == 200 else {}


def _selection(tab: str = ids.TAB_DESCRAMBLE) -> dict:
    return {"model": MODEL, "layer": LAYER, "view": "default", "tab": tab, "dataset": "zoo"}


def _start(page: Page, nonce: str, steps: int) -> tuple[dict, dict]:
    key, spec = page.callback(ids.JOB_DESCRAMBLE.done_store, ids.JOB_DESCRAMBLE.run_store)
    options = {
        ids.RADIO_DESCRAMBLE_SOURCE: "limit",
        ids.RADIO_DESCRAMBLE_METHOD: "iterative",
        ids.RADIO_DESCRAMBLE_OPTIMIZER: "adam",  # runs to the step limit: a job to cancel or kill
        ids.INPUT_DESCRAMBLE_STEPS: steps,
        ids.INPUT_DESCRAMBLE_LR: 0.03,
    }
    state = [
        _selection() if s["id"] == ids.STORE_SELECTION_STATE else options.get(s["id"])
        for s in spec["state"]
    ]
    body = page.body(key, spec, [{"nonce": nonce, "clicks": 1}], state)
    handles = page.post(body)
    assert set(handles) >= {"cacheKey", "job"}, handles
    return body, handles


def _poll(page: Page, body: dict, handles: dict, *, until=None, timeout: float = 60) -> tuple:
    """(the job's done-store value or None when it ended without one, progress seen)."""
    progress: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = page.post(body, cacheKey=handles["cacheKey"], job=handles["job"])
        if "progress" in reply:
            progress.append(reply["progress"])
        if "response" in reply:
            return reply["response"].get(ids.JOB_DESCRAMBLE.done_store, {}).get("data"), progress
        if until is not None and until(progress):
            return "running", progress
        if not reply:  # 204: Dash ended the job with no output
            return None, progress
        time.sleep(0.2)
    raise TimeoutError(f"no answer within {timeout} s; progress seen: {progress[-3:]}")


def _jobs() -> list[psutil.Process]:
    """The forked job processes (children of this test process)."""
    return [p for p in psutil.Process().children() if "python" in p.name().lower()]


@pytest.fixture
def app(tmp_path):
    return create_app(AppConfig(models=[MODEL, "digits"], upload_dir=tmp_path / "up"))


def test_the_app_uses_the_watching_job_manager(app):
    manager = app._background_manager
    assert isinstance(manager, WatchedDiskcacheManager)
    assert is_lost_job(RuntimeError(f"An error occurred inside a background callback: {LOST_JOB}"))


def test_a_killed_job_is_reported_failed_and_the_app_keeps_serving(app):
    page = Page(app)
    before = {p.pid for p in _jobs()}
    body, handles = _start(page, "nonce-kill", steps=100_000)
    bar = f"{ids.JOB_DESCRAMBLE.progress}.value"
    state, progress = _poll(page, body, handles, until=lambda s: any(p.get(bar) for p in s))
    assert state == "running" and progress, "the job reported no progress"
    victims = [p for p in _jobs() if p.pid not in before]
    assert len(victims) == 1, victims
    victims[0].send_signal(signal.SIGKILL)  # the worker dies mid-job (as the OOM killer does)
    victims[0].wait(10)
    started = time.monotonic()
    done, _ = _poll(page, body, handles, timeout=20)
    assert done is not None, "the job vanished without a result: the page would say nothing"
    assert done["status"] == "error" and done["message"] == LOST_MESSAGE, done
    assert done["nonce"] == "nonce-kill" and done["key"], done
    assert time.monotonic() - started < 5  # noticed at the next poll, not after a timeout
    # the view shows the failure for the options on screen ...
    key, spec = page.callback(f"..{ids.GRAPH_DESCRAMBLE_RAW}", ids.JOB_DESCRAMBLE.done_store)
    values = {
        ids.STORE_SELECTION_STATE: _selection(),
        ids.RADIO_DESCRAMBLE_SOURCE: "limit",
        ids.RADIO_DESCRAMBLE_METHOD: "iterative",
        ids.RADIO_DESCRAMBLE_OPTIMIZER: "adam",  # runs to the step limit: a job to cancel or kill
        ids.INPUT_DESCRAMBLE_STEPS: 100_000,
        ids.INPUT_DESCRAMBLE_LR: 0.03,
        ids.JOB_DESCRAMBLE.done_store: done,
    }
    inputs = [values.get(i["id"]) for i in spec["inputs"]]
    reply = page.post(page.body(key, spec, inputs, [values.get(s["id"]) for s in spec["state"]]))
    assert "process ended unexpectedly" in json.dumps(reply["response"])
    # ... and the app keeps serving: the page, another view, another user
    assert page.client.get("/").status_code == 200
    other = Page(app)
    key, spec = other.callback(f"..{ids.GRAPH_SPECTRUM_VALUES}", ids.STORE_SELECTION_STATE)
    values = {ids.STORE_SELECTION_STATE: _selection(ids.TAB_SPECTRUM)}
    inputs = [values.get(i["id"]) for i in spec["inputs"]]
    reply = other.post(other.body(key, spec, inputs, [values.get(s["id"]) for s in spec["state"]]))
    assert ids.GRAPH_SPECTRUM_VALUES in reply["response"]


def test_a_cancelled_job_is_not_reported_as_lost(app):
    page = Page(app)
    before = {p.pid for p in _jobs()}
    body, handles = _start(page, "nonce-cancel", steps=100_000)
    bar = f"{ids.JOB_DESCRAMBLE.progress}.value"
    _poll(page, body, handles, until=lambda s: any(p.get(bar) for p in s))
    manager = app._background_manager
    (job,) = [p.pid for p in _jobs() if p.pid not in before]
    manager.terminate_job(job)  # what Dash's Cancel does
    done, _ = _poll(page, body, handles, timeout=20)
    assert done is None  # ended without output: the Cancel callback says "cancelled"


def test_another_session_cannot_read_or_cancel_a_job_from_its_handles(app):
    """Even with the job's signed handles and page id copied from an access log."""
    alice, mallory = Page(app), Page(app)
    assert alice.session != mallory.session
    before = {p.pid for p in _jobs()}
    body, handles = _start(alice, "nonce-alice", steps=100_000)
    bar = f"{ids.JOB_DESCRAMBLE.progress}.value"
    _poll(alice, body, handles, until=lambda s: any(p.get(bar) for p in s))
    (job,) = [p for p in _jobs() if p.pid not in before]
    mallory.end_id = alice.end_id  # replays alice's URLs with her own cookie
    for _ in range(5):
        reply = mallory.post(body, cacheKey=handles["cacheKey"], job=handles["job"])
        assert "progress" not in reply and "response" not in reply, reply
        time.sleep(0.3)
    key, spec = mallory.callback(f"{ids.JOB_DESCRAMBLE.cancel}.id", ids.JOB_DESCRAMBLE.cancel)
    mallory.post(mallory.body(key, spec, [1], []), cancelJob=handles["job"])
    time.sleep(0.5)
    assert job.is_running() and job.status() != psutil.STATUS_ZOMBIE  # not cancelled
    _, progress = _poll(alice, body, handles, until=lambda s: any(p.get(bar) for p in s))
    assert progress  # alice still sees her job
    job.kill()
    done, _ = _poll(alice, body, handles, timeout=20)
    assert done["status"] == "error"  # and only she hears of its end
