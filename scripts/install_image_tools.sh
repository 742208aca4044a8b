#!/usr/bin/env bash
# Debian's buildah and debootstrap for the container-image test (tests/e2e/test_image.py builds a real
# model image without a daemon).
exec bash "$(dirname "$0")/install_debian.sh" "image tools" "the container-image test" \
    buildah debootstrap -- buildah debootstrap
