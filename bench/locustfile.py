"""Locust users that POST the dashboard's cached view callbacks, the way the browser does.

Run by bench/bench_load.py (which starts gunicorn, warms the cache and prints the table):

    locust -f bench/locustfile.py --headless -u 20 -r 5 -t 60s --host http://127.0.0.1:PORT

The request bodies come from the JSON file named by SVDSCOPE_BENCH_BODIES (a list of
{"view", "model", "layer", "body"}, written by bench_load.py). Without it they are built
here with bench/dash_calls.py for the four views (weights, spectrum, vectors, overview) of
SVDSCOPE_BENCH_LAYERS ("model:layer,model:layer"; default: dash_calls.LOAD_LAYERS, two
layers of each zoo model that bench_load.py serves). Each request is named by its view, so
locust's statistics are per view.

Each user waits SVDSCOPE_BENCH_WAIT seconds ("min,max", default "0.2,1.0") between calls.
When SVDSCOPE_BENCH_TIMES names a file, every response time (ms, unrounded: locust's own
percentiles round to 2 significant digits) and every failure is written to it as JSON when
the test stops.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dash_calls


def parse_layers(text: str | None) -> list[tuple[str, str]]:
    """ "model:layer,model:layer" -> [(model, layer), ...] (None or "": dash_calls.LOAD_LAYERS)."""
    if not text:
        return list(dash_calls.LOAD_LAYERS)
    pairs = []
    for item in text.split(","):
        model, sep, layer = item.strip().rpartition(":")
        if not sep or not model or not layer:
            raise ValueError(f"expected model:layer, got {item!r}")
        pairs.append((model, layer))
    return pairs


def _load_requests() -> list[dict[str, str]]:
    path = os.environ.get("SVDSCOPE_BENCH_BODIES")
    if path:
        return json.loads(Path(path).read_text())
    # Standalone: build the app as gunicorn's workers do (same environment, same callbacks).
    from app.config import AppConfig
    from app.main import create_app

    app = create_app(AppConfig.from_env())
    return dash_calls.view_bodies(app, parse_layers(os.environ.get("SVDSCOPE_BENCH_LAYERS")))


def _wait_range() -> tuple[float, float]:
    lo, _, hi = os.environ.get("SVDSCOPE_BENCH_WAIT", "0.2,1.0").partition(",")
    return float(lo), float(hi or lo)


REQUESTS = _load_requests()
_times: dict[str, list[float]] = defaultdict(list)
_failures: dict[str, list[str]] = defaultdict(list)


@events.request.add_listener
def _record(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    if exception is None:
        _times[name].append(float(response_time))
    else:
        _failures[name].append(str(exception)[:200])


@events.test_stop.add_listener
def _dump(**_: Any) -> None:
    path = os.environ.get("SVDSCOPE_BENCH_TIMES")
    if path:
        Path(path).write_text(json.dumps({"times_ms": _times, "failures": _failures}))


class DashboardUser(FastHttpUser):
    """A browser session switching between the cached views of a few layers."""

    wait_time = between(*_wait_range())

    @task
    def view(self) -> None:
        req = random.choice(REQUESTS)
        with self.client.post(
            dash_calls.ROUTE,
            data=req["body"],
            headers={"Content-Type": "application/json"},
            name=req["view"],
            catch_response=True,
        ) as res:
            if res.status_code != 200:
                res.failure(f"{req['model']}/{req['layer']}: HTTP {res.status_code}")
            elif b'"response"' not in (res.content or b""):
                res.failure(f"{req['model']}/{req['layer']}: no callback response in the body")
            else:
                res.success()
