"""Fixtures shared by the browser tests."""

from __future__ import annotations

import pytest
from e2e_helpers import job_processes


@pytest.fixture
def no_leftover_jobs():
    """Kill background jobs a failed test left behind (else exit waits for them)."""
    yield
    for proc in job_processes():
        proc.kill()
