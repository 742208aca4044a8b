"""Headless Chromium for the tests that check pages as a browser shows them (/docs, monitoring reports)."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def run_chromium(
    url: str, profile: Path, *extra: str, budget_ms: int = 15000, offline: bool = False
) -> subprocess.CompletedProcess[str]:
    """Load ``url`` in a fresh profile; ``extra`` adds e.g. ``--dump-dom`` or ``--screenshot=...``. With
    ``offline`` no host name resolves, so a page that needs the network shows it."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
        *(["--host-resolver-rules=MAP * ~NOTFOUND"] if offline else []), *extra, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def require_chromium(what: str) -> str:
    """Debian's Chromium, or a loud skip saying what was not checked and how to get it."""
    if not Path(CHROMIUM).exists():
        reason = (
            f"{CHROMIUM} is missing, so {what} was NOT rendered in a browser: run scripts/install_chromium.sh"
        )
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    return CHROMIUM
