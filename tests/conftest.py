"""Shared pytest setup: one BLAS / torch thread, a private cache folder and free server
ports per process (the suite runs under pytest-xdist), and Chrome options for dash.testing
(per shared/recipes/browser-tests.md)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

# One thread everywhere, before torch / numpy start their pools: results then do not depend
# on the machine's core count (a BLAS reduction split over other thread counts rounds
# otherwise), and two xdist workers on two cores do not fight over them (see
# shared/recipes/performance-facts.md). Subprocesses (workers, gunicorn) inherit these.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import pytest  # noqa: E402
from dash.testing.application_runners import ThreadedRunner  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)
    # default_cache_dir() is ~/.cache/svdscope/results: shared by every process of the user
    # (other test workers, a dashboard being served). Each test process gets its own.
    folder = tempfile.mkdtemp(prefix="svdscope-test-xdg-cache-")
    config.stash[_CACHE_HOME] = (folder, os.environ.get("XDG_CACHE_HOME"))
    os.environ["XDG_CACHE_HOME"] = folder


_CACHE_HOME = pytest.StashKey[tuple[str, str | None]]()


def pytest_unconfigure(config: pytest.Config) -> None:
    folder, before = config.stash.get(_CACHE_HOME, (None, None))
    if folder is None:
        return
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before
    shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# dash_duo serves on 58050, 58051, ... counted per process: two xdist workers (or another
# suite on this machine) would start on the same ports, and a test could then talk to the
# other process's app. Each start takes a port that is free right now instead.
_threaded_start = ThreadedRunner.start


def _start_on_a_free_port(self, app, start_timeout=3, **kwargs):
    kwargs.setdefault("port", _free_port())
    return _threaded_start(self, app, start_timeout, **kwargs)


ThreadedRunner.start = _start_on_a_free_port

# The closed network makes Chromium's background connections fail noisily without these.
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1280,900",
]


def pytest_setup_options() -> Options:
    """dash.testing hook: the Chrome options of every `dash_duo` browser."""
    opts = Options()
    opts.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for arg in CHROME_ARGS:
        opts.add_argument(arg)
    return opts
