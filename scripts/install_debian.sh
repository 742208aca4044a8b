#!/usr/bin/env bash
# Install Debian packages that some tests need, when they are missing:
#   install_debian.sh LABEL "WHAT IS SKIPPED WITHOUT THEM" COMMAND [COMMAND ...] -- PACKAGE [PACKAGE ...]
# Never fails: without the packages those tests are SKIPPED, loudly, with the reason.
set -u

label=$1 skipped=$2
shift 2
commands=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do commands+=("$1"); shift; done
shift
packages=("$@")

have_all() {
    for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || return 1; done
}
versions() {
    for c in "${commands[@]}"; do printf '%s ' "$("$c" --version 2>/dev/null | head -n1)"; done
}

if have_all; then
    echo "$label: $(versions)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$label: WARNING: no apt-get here; $skipped will be SKIPPED"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "$label: WARNING: not root and no sudo; $skipped will be SKIPPED"
        exit 0
    fi
fi
echo "$label: installing Debian's ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 && have_all; then
    echo "$label: $(versions)"
else
    echo "$label: WARNING: installing ${packages[*]} failed; $skipped will be SKIPPED"
fi
exit 0
