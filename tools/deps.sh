#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what building and testing sigsafe needs on Debian/Ubuntu, as root
# or through sudo; where it cannot, prints the exact command and fails.
# Usage: tools/deps.sh [extra-package ...]
set -eu

pkgs="cmake make gcc g++ libc6-dev binutils pkg-config check libsigsegv-dev $*"
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "sigsafe: missing packages:$missing (no apt-get here; install them by hand)" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    echo "sigsafe: installing$missing" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive $cmd -qq
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "sigsafe: installing$missing (sudo)" >&2
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive $cmd -qq
else
    echo "sigsafe: missing packages:$missing" >&2
    echo "run:  sudo apt-get update && sudo $cmd" >&2
    exit 1
fi
