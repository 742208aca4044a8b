#!/usr/bin/env bash
# Install Debian's Chromium for the headless browser tests (tests/integration/test_openapi.py renders
# /docs in it). Never fails: without a browser those tests are SKIPPED, loudly, with the reason.
set -u

if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: WARNING: no apt-get here; the headless browser tests will be SKIPPED"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "chromium: WARNING: not root and no sudo; the headless browser tests will be SKIPPED"
        exit 0
    fi
fi
echo "chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null 2>&1 && [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
else
    echo "chromium: WARNING: installing chromium failed; the headless browser tests will be SKIPPED"
fi
exit 0
