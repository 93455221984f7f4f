#!/usr/bin/env bash
# The side-by-side load benchmark. Run it through `scripts/bench`, which
# installs nginx, wrk and redis-server and builds the release binary first.
#
# Starts on loopback, on free ports, in a temporary folder: a static upstream
# (nginx, one worker, 100-byte body), redis-server, nginx as a plain reverse
# proxy (the peer), and portcullis, restarted for every scenario so its peak
# RSS (VmHWM) belongs to that scenario alone. Drives each with wrk for
# BENCH_SECONDS at BENCH_CONNECTIONS, then writes one table with the ratios to
# benches/RESULTS.md (see benches/load/report.py). Every process it starts is
# stopped on exit.
#
# Settings (environment):
#   BENCH_SECONDS=10            measured seconds per scenario
#   BENCH_ROUNDS=1              rounds of (a)-(f), (h) and the diagnostics (c0), (h1); medians reported
#   BENCH_WARMUP_SECONDS=2      unmeasured load before each scenario
#   BENCH_CONNECTIONS=50        wrk connections
#   BENCH_STORM_CONNECTIONS=16  password-grant connections in scenario (h)
#   BENCH_WRK_THREADS=2         wrk threads
#   BENCH_GATEWAY_THREADS=nproc portcullis threads = nginx proxy workers
#   BENCH_RESULTS=benches/RESULTS.md
#   BENCH_QUIET_WAIT_SECONDS=60 how long to wait for other work to stop before each scenario
#   BENCH_KEEP=1                keep the temporary folder (configs, logs, raw wrk output)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/target/release/portcullis}"
DURATION="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP_SECONDS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-50}"
STORM_CONNECTIONS="${BENCH_STORM_CONNECTIONS:-16}"
ROUNDS="${BENCH_ROUNDS:-1}"
ROUND=1
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
GATEWAY_THREADS="${BENCH_GATEWAY_THREADS:-$(nproc)}"
RESULTS_MD="${BENCH_RESULTS:-$ROOT/benches/RESULTS.md}"
PASSWORD="bench-password-not-a-secret"
CLOCK_TICKS="$(getconf CLK_TCK)"

# The gateway reads these; the benchmark sets everything in its own file.
unset PORTCULLIS_REDIS_URL PORTCULLIS_MONGODB_URI PORTCULLIS_CONFIG RUST_LOG

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# shellcheck source=benches/load/lib.sh
source "$HERE/lib.sh"
require_tools nginx wrk redis-server curl python3

# What the binary was built from (scripts/bench builds just before this).
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null \
    || COMMIT="$COMMIT with uncommitted changes"

open_work_dir portcullis-bench
RESULTS="$WORK/results.txt"
: >"$RESULTS"

# --- the fixed parts: upstream, redis, nginx proxy -------------------------

BUSY_WARNINGS=0
read -r UPSTREAM_PORT PROXY_PORT REDIS_PORT GATEWAY_HTTP_PORT GATEWAY_HTTPS_PORT < <(free_ports 5)

start_upstream_and_redis
fill_template "$HERE/proxy.nginx.conf" "$WORK/proxy.conf"
start proxy nginx -p "$WORK" -e "$WORK/proxy-error.log" -c "$WORK/proxy.conf"
PROXY_PID=$STARTED_PID
wait_for_port "$PROXY_PORT" "the nginx proxy" "$PROXY_PID"

# --- portcullis ------------------------------------------------------------

# gateway_config FILE TOKENS(memory|redis) BCRYPT_COST [BCRYPT_WORKERS]
gateway_config() {
    local tokens="{kind: memory}"
    if [ "$2" = redis ]; then
        tokens="{kind: redis, redis: {url: \"redis://127.0.0.1:$REDIS_PORT/0\"}}"
    fi
    cat >"$1" <<EOF
listen:
  http: {address: "127.0.0.1:$GATEWAY_HTTP_PORT"}
  https: {address: "127.0.0.1:$GATEWAY_HTTPS_PORT", http2: true}
  metrics: null
data_dir: $WORK/gateway-data
upstreams:
  app: {servers: ["127.0.0.1:$UPSTREAM_PORT"]}
routes:
  - {path_prefix: /public, upstream: app, public: true}
  - {path_prefix: /api, upstream: app}
oauth:
  # The load generators sign in over plain HTTP on loopback.
  allow_plaintext: true
  bcrypt_cost: $3${4:+
  bcrypt_workers: $4}
tokens: $tokens
server:
  threads: $GATEWAY_THREADS
  grace_period_seconds: 0
  shutdown_timeout_seconds: 1
EOF
}
gateway_config "$WORK/memory.yaml" memory 12
gateway_config "$WORK/redis.yaml" redis 12
gateway_config "$WORK/redis-cost4.yaml" redis 4
gateway_config "$WORK/redis-1-worker.yaml" redis 12 1

# One user per bcrypt cost: the stored hash carries its cost, which is what a
# password grant pays.
add_user() {
    echo "$PASSWORD" | "$GATEWAY_BIN" -c "$1" user add "$2" --password-stdin --json >/dev/null 2>>"$WORK/admin.log" \
        || die "portcullis user add failed: $(cat "$WORK/admin.log")"
}
add_user "$WORK/memory.yaml" bench12
add_user "$WORK/redis-cost4.yaml" bench4
CLIENT_ID="$("$GATEWAY_BIN" -c "$WORK/memory.yaml" client add bench --json 2>>"$WORK/admin.log" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')"

GRANT_12="grant_type=password&client_id=$CLIENT_ID&username=bench12&password=$PASSWORD"
GRANT_4="grant_type=password&client_id=$CLIENT_ID&username=bench4&password=$PASSWORD"
GRANT_UNKNOWN_CLIENT="grant_type=password&client_id=no-such-client&username=bench4&password=$PASSWORD"

GATEWAY_PID=""
# start_gateway CONFIG SCENARIO [RUST_LOG]: a fresh process per scenario, so
# its VmHWM is that scenario's peak. RUST_LOG unset means the default (info,
# with one access-log line per request), as shipped.
start_gateway() {
    [ -z "$GATEWAY_PID" ] || stop_gateway
    if [ -n "${3:-}" ]; then
        start "gateway-$2" env RUST_LOG="$3" "$GATEWAY_BIN" -c "$1" serve
    else
        start "gateway-$2" "$GATEWAY_BIN" -c "$1" serve
    fi
    GATEWAY_PID=$STARTED_PID
    wait_for_port "$GATEWAY_HTTP_PORT" "portcullis" "$GATEWAY_PID"
    wait_for_port "$GATEWAY_HTTPS_PORT" "portcullis (HTTPS)" "$GATEWAY_PID"
}
stop_gateway() {
    # SIGINT: Pingora's fast shutdown.
    stop "$GATEWAY_PID" INT
    GATEWAY_PID=""
}

# A fresh access token from the running gateway (cost 4 user: fast).
fetch_token() {
    curl -s -X POST --data "$GRANT_4" "http://127.0.0.1:$GATEWAY_HTTP_PORT/oauth/token" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' \
        || die "could not get an access token from portcullis (logs in $WORK; set BENCH_KEEP=1)"
}

UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT/api/items"
PROXY_URL="http://127.0.0.1:$PROXY_PORT/api/items"
PUBLIC_URL="http://127.0.0.1:$GATEWAY_HTTP_PORT/public/items"
API_URL="http://127.0.0.1:$GATEWAY_HTTP_PORT/api/items"
API_HTTPS_URL="https://127.0.0.1:$GATEWAY_HTTPS_PORT/api/items"
TOKEN_URL="http://127.0.0.1:$GATEWAY_HTTP_PORT/oauth/token"

# --- scenarios -------------------------------------------------------------
# One round runs (a) to (f) in an order that keeps compared pairs close in
# time: b, c, e, and h right after e. BENCH_ROUNDS=N repeats the round; the
# report takes each figure's median over the rounds.

throughput_round() {
    expect_status 200 "$UPSTREAM_URL"
    measure a upstream-nginx "$UPSTREAM_URL" $(process_tree "$UPSTREAM_PID")

    expect_status 200 "$PROXY_URL"
    measure b nginx-proxy "$PROXY_URL" $(process_tree "$PROXY_PID")

    start_gateway "$WORK/memory.yaml" c
    expect_status 200 "$PUBLIC_URL"
    expect_status 401 "$API_URL"
    measure c portcullis "$PUBLIC_URL" "$GATEWAY_PID"

    # (c0), a diagnostic beside (c): the same without the access log, to
    # show what one log line per request costs.
    start_gateway "$WORK/memory.yaml" c0 warn
    measure c0 portcullis "$PUBLIC_URL" "$GATEWAY_PID"

    start_gateway "$WORK/memory.yaml" d
    BENCH_TOKEN="$(fetch_token)"
    export BENCH_TOKEN
    expect_status 200 "$API_URL" -H "Authorization: Bearer $BENCH_TOKEN"
    measure d portcullis "$API_URL" "$GATEWAY_PID"

    start_gateway "$WORK/redis.yaml" e
    BENCH_TOKEN="$(fetch_token)"
    expect_status 200 "$API_URL" -H "Authorization: Bearer $BENCH_TOKEN"
    measure e portcullis "$API_URL" "$GATEWAY_PID"

    storm_round h "$WORK/redis.yaml"
    # (h1), a diagnostic beside (h): one bcrypt worker instead of one per
    # core, so a core stays free for proxying.
    storm_round h1 "$WORK/redis-1-worker.yaml"

    start_gateway "$WORK/redis.yaml" f
    BENCH_TOKEN="$(fetch_token)"
    expect_status 200 "$API_HTTPS_URL" -H "Authorization: Bearer $BENCH_TOKEN"
    measure f portcullis "$API_HTTPS_URL" "$GATEWAY_PID"
    unset BENCH_TOKEN
}

# storm_round ID CONFIG: the (e) load while password grants (cost 12) keep
# the bcrypt pool full. The storm starts first and ends after the measured
# GETs.
storm_round() {
    local id="$1" storm_pid fields
    start_gateway "$2" "$id"
    BENCH_TOKEN="$(fetch_token)"
    expect_status 200 "$API_URL" -H "Authorization: Bearer $BENCH_TOKEN"
    wait_for_quiet
    say "($id) $API_URL under a password-grant storm of $STORM_CONNECTIONS connections"
    if [ "$WARMUP" -gt 0 ]; then
        run_wrk "$WORK/$id.r$ROUND.warmup.wrk" "$CONNECTIONS" "$WRK_THREADS" "$WARMUP" "$API_URL" >/dev/null
    fi
    (
        export BENCH_TOKEN="" BENCH_BODY="$GRANT_12"
        run_wrk "$WORK/$id-storm.r$ROUND.wrk" "$STORM_CONNECTIONS" 1 "$((DURATION + 3))" "$TOKEN_URL" \
            >"$WORK/$id-storm.r$ROUND.fields"
    ) &
    storm_pid=$!
    sleep 1.5 # the storm fills the pool before the measured GETs start
    begin_window "$GATEWAY_PID"
    fields="$(run_wrk "$WORK/$id.r$ROUND.wrk" "$CONNECTIONS" "$WRK_THREADS" "$DURATION" "$API_URL")"
    record "$id" portcullis "$fields" "$GATEWAY_PID"
    wait "$storm_pid" || die "the password-grant storm failed: $(cat "$WORK/$id-storm.r$ROUND.wrk")"
    echo "id=$id-storm round=$ROUND process=portcullis connections=$STORM_CONNECTIONS" \
        "$(cat "$WORK/$id-storm.r$ROUND.fields") cpu_pct=- upstream_pct=- redis_pct=- machine_pct=- peak_rss_kib=-" >>"$RESULTS"
}

for ROUND in $(seq "$ROUNDS"); do
    [ "$ROUNDS" -eq 1 ] || say "round $ROUND of $ROUNDS"
    throughput_round
done

# (g) and the bcrypt limit. Time per hash at cost 12 = the mean latency of
# one password grant at a time, minus that of a grant refused before bcrypt
# (unknown client): the same request through the same code, without the
# hash. At cost 4 the hash is too short to separate from the rest of a grant
# this way; report.py scales the cost-12 time by 2^-8 (bcrypt's work doubles
# with each cost step) and shows the measured grant latency beside it.
calibrate() {
    local name="$1" body="$2" fields
    fields="$(BENCH_BODY="$body" run_wrk "$WORK/calibrate-$name.wrk" 1 1 "$DURATION" "$TOKEN_URL")"
    echo "id=calibrate-$name round=1 process=portcullis connections=1 $fields cpu_pct=- upstream_pct=- redis_pct=- machine_pct=- peak_rss_kib=-" >>"$RESULTS"
}
for cost in 12 4; do
    if [ "$cost" = 12 ]; then config="$WORK/redis.yaml" grant="$GRANT_12"; else config="$WORK/redis-cost4.yaml" grant="$GRANT_4"; fi
    start_gateway "$config" "g$cost"
    wait_for_quiet
    say "(g) bcrypt cost $cost: one grant at a time, then $CONNECTIONS connections"
    [ "$cost" = 4 ] || calibrate unknown-client "$GRANT_UNKNOWN_CLIENT"
    calibrate "cost$cost" "$grant"
    # No warm-up here: grants a warm-up leaves queued would still be hashed
    # during the measured run, for clients that are gone.
    BENCH_BODY="$grant" MEASURE_WARMUP=0 measure "g$cost" portcullis "$TOKEN_URL" "$GATEWAY_PID"
done
stop_gateway

# --- machine and report ----------------------------------------------------

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit=$COMMIT"
    echo "cores=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cpu_mhz=$(awk -F': ' '/^cpu MHz/ {printf "%.0f", $2; exit}' /proc/cpuinfo)"
    echo "memory=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "rustc=$(rustc --version 2>/dev/null || echo unknown)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
    echo "redis=$(redis-server --version | awk '{print $3}' | sed 's/^v=//')"
    echo "seconds=$DURATION"
    echo "rounds=$ROUNDS"
    echo "warmup_seconds=$WARMUP"
    echo "connections=$CONNECTIONS"
    echo "storm_connections=$STORM_CONNECTIONS"
    echo "wrk_threads=$WRK_THREADS"
    echo "gateway_threads=$GATEWAY_THREADS"
    echo "load_average=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "busy_warnings=$BUSY_WARNINGS"
} >"$WORK/machine.txt"

python3 "$HERE/report.py" "$WORK/machine.txt" "$RESULTS" "$RESULTS_MD"
