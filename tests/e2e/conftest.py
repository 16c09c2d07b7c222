"""Fixtures shared by the browser tests."""

from __future__ import annotations

import time

import pytest
from e2e_helpers import job_processes

import svdcore.surgery


@pytest.fixture
def no_leftover_jobs():
    """Kill background jobs a failed test left behind (else exit waits for them)."""
    yield
    for proc in job_processes():
        proc.kill()


@pytest.fixture
def slow_krylov(monkeypatch):
    """Each block step of the randomized SVD takes a little longer, so that the test sees
    the Compute job's progress bar move (the forked job inherits this)."""
    engine = svdcore.surgery.operator_svd

    def slow(*args, progress=None, **kwargs):
        def report(done, total):
            time.sleep(0.3)
            progress(done, total)

        return engine(*args, progress=report, **kwargs)

    monkeypatch.setattr(svdcore.surgery, "operator_svd", slow)
