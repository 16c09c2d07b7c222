"""Background jobs on Celery, end to end: a real redis-server, a real `svdscope worker`
process, and the web app called through Dash's own HTTP endpoint (Flask test client) the
way the browser's renderer calls it: start the iterative descrambler, poll its progress,
get the result that the worker left in Redis; and Cancel, which the worker obeys."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from deploy_helpers import ping_worker, start_worker, stop_process, worker_env

from app import ids
from app.config import AppConfig
from app.main import create_app, get_celery, get_services
from app.services.descramble import DescrambleOptions
from app.storage.session import SESSION_COOKIE

pytestmark = pytest.mark.slow

MODEL, LAYER = "deernet", "fc1"  # 80 x 256: one Cayley/Adam step takes milliseconds


@pytest.fixture(scope="module")
def deployment(
    redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The environment of a lab deployment on the test's redis-server, with one real
    Celery worker (`svdscope worker`) running for the module."""
    folder = tmp_path_factory.mktemp("celery")
    env = {
        "SVDSCOPE_REDIS_URL": f"{redis_server}/0",
        "SVDSCOPE_MODELS": MODEL,
        "SVDSCOPE_UPLOAD_DIR": str(folder / "uploads"),
        "SVDSCOPE_CACHE_DIR": str(folder / "cache"),
    }
    log = folder / "worker.log"
    proc = start_worker(worker_env(env), log)
    try:
        ping_worker(env["SVDSCOPE_REDIS_URL"], timeout=90)
    except TimeoutError:
        stop_process(proc)
        pytest.fail("the Celery worker did not start:\n" + log.read_text()[-4000:])
    try:
        yield env
    finally:
        stop_process(proc)


class Page:
    """One browser page load: its session cookie, signed end_id and the callback map."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = create_app(AppConfig.from_env(env))
        self.client = self.app.server.test_client()
        html = self.client.get("/").get_data(as_text=True)
        config = re.search(
            r'<script id="_dash-config" type="application/json">(.*?)</script>', html
        )
        assert config, "the index page has no _dash-config"
        self.end_id = json.loads(config.group(1))["end_id"]
        self.session = self.client.get_cookie(SESSION_COOKIE).value

    def callback(self, output_prefix: str, trigger: str) -> tuple[str, dict]:
        """The callback map entry whose output starts with `output_prefix` and is
        triggered by `trigger` (component id)."""
        for key, spec in self.app.callback_map.items():
            if key.startswith(output_prefix) and any(i["id"] == trigger for i in spec["inputs"]):
                return key, spec
        raise KeyError(output_prefix)

    def body(self, key: str, spec: dict, inputs: list, state: list) -> dict:
        out_id, _, prop = key.lstrip(".").split("@")[0].partition(".")
        return {
            "output": key,
            "outputs": {"id": out_id, "property": prop},
            "inputs": [dict(i, value=v) for i, v in zip(spec["inputs"], inputs, strict=True)],
            "state": [dict(s, value=v) for s, v in zip(spec["state"], state, strict=True)],
            "changedPropIds": [f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"],
        }

    def post(self, body: dict, **args: str) -> dict:
        res = self.client.post(
            "/_dash-update-component", json=body, query_string={"endId": self.end_id, **args}
        )
        assert res.status_code == 200, res.get_data(as_text=True)[-2000:]
        return res.get_json()


def _start_descramble(page: Page, nonce: str, steps: int) -> tuple[dict, dict]:
    key, spec = page.callback(ids.JOB_DESCRAMBLE.done_store, ids.JOB_DESCRAMBLE.run_store)
    options = {  # the option controls, by id
        ids.RADIO_DESCRAMBLE_SOURCE: "limit",
        ids.RADIO_DESCRAMBLE_METHOD: "iterative",
        ids.RADIO_DESCRAMBLE_OPTIMIZER: "adam",  # runs to the step limit: a job to cancel or kill
        ids.INPUT_DESCRAMBLE_STEPS: steps,
        ids.INPUT_DESCRAMBLE_LR: 0.03,
    }
    selection = {"model": MODEL, "layer": LAYER, "view": "default", "tab": ids.TAB_DESCRAMBLE}
    state = [
        selection if s["id"] == ids.STORE_SELECTION_STATE else options.get(s["id"])
        for s in spec["state"]
    ]
    body = page.body(key, spec, [{"nonce": nonce, "clicks": 1}], state)
    handles = page.post(body)
    assert set(handles) >= {"cacheKey", "job"}, handles  # Dash's signed background handles
    return body, handles


def _poll(
    page: Page, body: dict, handles: dict, *, until: Any = None, timeout: float = 120
) -> tuple[dict, list]:
    """Poll the job like the renderer does; (its output, the progress reports seen).
    `until(progress)` may end the polling early (returns ({}, progress))."""
    progress: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = page.post(body, cacheKey=handles["cacheKey"], job=handles["job"])
        if "progress" in reply:
            progress.append(reply["progress"])
        if "response" in reply:
            return reply["response"][ids.JOB_DESCRAMBLE.done_store]["data"], progress
        if until is not None and until(progress):
            return {}, progress
        time.sleep(0.2)
    raise TimeoutError(f"no result within {timeout} s; progress seen: {progress[-3:]}")


def test_a_background_job_runs_on_the_worker_and_its_result_lands(deployment):
    page = Page(deployment)
    assert get_celery(page.app) is not None  # the web app queues jobs; it runs none itself
    body, handles = _start_descramble(page, "nonce-done", steps=1500)
    done, progress = _poll(page, body, handles)
    assert done["status"] == "done" and done["nonce"] == "nonce-done", done
    bar = f"{ids.JOB_DESCRAMBLE.progress}.value"
    assert progress and any(p.get(bar) for p in progress), progress  # the bar moved
    # the worker computed it into Redis, where this web process finds it without computing
    services = get_services(page.app)
    options = DescrambleOptions(
        source="limit", method="iterative", steps=1500, lr=0.03, optimizer="adam"
    )
    assert done["key"] == services.descramble.key(MODEL, LAYER, options, page.session)
    data = services.descramble.run(MODEL, LAYER, options, page.session, compute=False)
    assert data is not None and not data.cancelled
    assert data.P.shape == (80, 80)


def test_cancel_stops_the_job_on_the_worker(deployment):
    page = Page(deployment)
    body, handles = _start_descramble(page, "nonce-cancel", steps=100_000)
    bar = f"{ids.JOB_DESCRAMBLE.progress}.value"
    _, progress = _poll(page, body, handles, until=lambda seen: any(p.get(bar) for p in seen))
    assert progress, "the job reported no progress before Cancel"
    # Cancel, as the page sends it: the cancel callback raises the job's flag in Redis
    key, spec = page.callback(ids.JOB_DESCRAMBLE.status, ids.JOB_DESCRAMBLE.cancel)
    state = {ids.JOB_DESCRAMBLE.run_store: {"nonce": "nonce-cancel", "clicks": 1}}
    reply = page.post(page.body(key, spec, [1], [state.get(s["id"]) for s in spec["state"]]))
    assert "cancelled" in json.dumps(reply)
    started = time.monotonic()
    done, _ = _poll(page, body, handles, timeout=30)
    assert done["status"] == "cancelled", done
    assert time.monotonic() - started < 10  # stopped within a few progress intervals
    services = get_services(page.app)
    options = DescrambleOptions(
        source="limit", method="iterative", steps=100_000, lr=0.03, optimizer="adam"
    )
    assert services.descramble.run(MODEL, LAYER, options, page.session, compute=False) is None
