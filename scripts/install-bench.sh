#!/usr/bin/env bash
# Install what `make bench` measures against, beyond the test peers
# (scripts/install-peers.sh): Debian's wrk, apache2 and
# libapache2-mod-auth-openidc, and valgrind (benchmarks/instructions.py counts
# the hot path's instructions with callgrind). (py-spy, for
# `benchmarks/bench.py --profile`, comes with the project's test extra.)
#
# Idempotent and quiet: apt runs only when a package is missing (as root; as
# anyone else this says what to install and fails). No package may start a system service: apt runs with
# a policy-rc.d that forbids it, and any apache2 service left running (from an
# earlier install) is stopped and disabled. The benchmarks run private Apache
# instances of their own (benchmarks/apache.py).
set -euo pipefail

cd "$(dirname "$0")/.."
APT_PACKAGES=(wrk apache2 libapache2-mod-auth-openidc valgrind)

say() { printf 'install-bench: %s\n' "$*"; }
die() { printf 'install-bench: %s\n' "$*" >&2; exit 1; }

# Run a command with its output kept back unless it fails.
quietly() {
    local log status=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$log" >&2
        printf 'install-bench: failed (%s): %s\n' "$status" "$*" >&2
    fi
    rm -f "$log"
    return "$status"
}

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# --- Debian packages -----------------------------------------------------------
command -v dpkg-query >/dev/null || die "dpkg-query not found: this script expects Debian; install ${APT_PACKAGES[*]} by hand"
missing=()
for package in "${APT_PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: ${missing[*]}; as root run: apt-get update && apt-get install -y ${missing[*]}"
    fi
    say "installing ${missing[*]}"
    # apache2 would start a service listening on port 80: policy-rc.d answering
    # 101 is Debian's switch against that. Only ours if absent.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    quietly apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- no apache2 system service -----------------------------------------------
# Whatever policy-rc.d said, a system Apache must not hold port 80 or a core.
if [ "$(id -u)" -eq 0 ] && installed apache2; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl stop apache2.service >/dev/null 2>&1 || true
        systemctl disable apache2.service >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null; then
        update-rc.d apache2 disable >/dev/null 2>&1 || true
    fi
    # Without systemd: the service's own pid file names its parent process.
    pidfile=/var/run/apache2/apache2.pid
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "stopping the apache2 system service (pid $(cat "$pidfile"))"
        quietly apache2ctl -k stop || true
    fi
fi
