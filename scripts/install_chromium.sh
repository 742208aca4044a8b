#!/usr/bin/env bash
# Debian's Chromium for the headless browser tests (tests/browser.py: /docs, the monitoring reports).
exec bash "$(dirname "$0")/install_debian.sh" chromium "the headless browser tests" \
    chromium -- chromium fonts-liberation
