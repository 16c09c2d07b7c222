"""Shared pytest setup: Chrome options for dash.testing (per shared/recipes/browser-tests.md)."""

from __future__ import annotations

import os

from selenium.webdriver.chrome.options import Options

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
