#!/usr/bin/env bash
# Install Debian's buildah and debootstrap for the container-image test (tests/e2e/test_image.py builds
# a real model image without a daemon). Never fails: without them that test is SKIPPED, loudly, with the
# reason.
set -u

if command -v buildah >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then
    echo "image tools: $(buildah --version 2>/dev/null | head -n1); debootstrap $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "image tools: WARNING: no apt-get here; the container-image test will be SKIPPED"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "image tools: WARNING: not root and no sudo; the container-image test will be SKIPPED"
        exit 0
    fi
fi
echo "image tools: installing Debian's buildah and debootstrap"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if $SUDO apt-get install -y -qq --no-install-recommends buildah debootstrap >/dev/null 2>&1; then
    echo "image tools: $(buildah --version 2>/dev/null | head -n1)"
else
    echo "image tools: WARNING: installing buildah/debootstrap failed; the container-image test will be SKIPPED"
fi
exit 0
