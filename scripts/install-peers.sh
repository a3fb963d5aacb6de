#!/usr/bin/env bash
# Install the independently written test peers that the end-to-end tests start:
# Debian's redis-server, chromium, chromium-driver and nginx, and node
# oidc-provider and axe-core (the accessibility checker the browser tests inject
# into each page; both pinned in tests/peers/node/package-lock.json).
#
# Idempotent and quiet: apt runs only when a package is missing (as root; as
# anyone else this says what to install and fails), and `npm ci` only when
# node_modules is missing or was installed from another lockfile.
# Never downloads a browser of its own: Playwright drives /usr/bin/chromium.
set -euo pipefail

cd "$(dirname "$0")/.."
NODE_DIR=tests/peers/node
APT_PACKAGES=(redis-server redis-sentinel chromium chromium-driver nginx)

say() { printf 'install-peers: %s\n' "$*"; }
die() { printf 'install-peers: %s\n' "$*" >&2; exit 1; }

# Run a command with its output kept back unless it fails.
quietly() {
    local log status=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$log" >&2
        printf 'install-peers: failed (%s): %s\n' "$status" "$*" >&2
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
    # Packages must not start system services (nginx would listen on port 80):
    # policy-rc.d answering 101 is Debian's switch for that. Only ours if absent.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update -q
    quietly apt-get install -y -q "${missing[@]}"
fi

# --- node oidc-provider, axe-core ----------------------------------------------
command -v node >/dev/null || die "node not found: Node.js 20 or later is needed for oidc-provider"
command -v npm >/dev/null || die "npm not found: it comes with Node.js 20 or later"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: oidc-provider 9 needs 20 or later"

stamp="$NODE_DIR/node_modules/.installed-from-lock.sha256"
want=$(sha256sum "$NODE_DIR/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
    || [ ! -f "$NODE_DIR/node_modules/axe-core/axe.min.js" ]; then
    say "npm ci in $NODE_DIR"
    (cd "$NODE_DIR" && quietly npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" >"$stamp"
fi
