#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: the one figure on
# these shared machines that does not drift between runs (same binary, same
# requests, same count). Run it through `scripts/bench --instructions`.
#
# Starts the upstream nginx and redis-server as run.sh does, then the release
# portcullis under `valgrind --tool=callgrind` with counting off; sends
# warm-up requests; then for each scenario turns counting on, sends N
# requests over 4 keep-alive connections, turns it off and dumps:
#   (c) a public route, (e) a Bearer token looked up in Redis.
# Prints instructions per request for each, and the functions of our own
# code with their inclusive share. The dumps stay in $WORK when BENCH_KEEP=1
# (open them with callgrind_annotate or kcachegrind).
#
# Settings (environment): INSTRUCTIONS_REQUESTS=2000, BENCH_KEEP=1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$ROOT/target/release/portcullis}"
REQUESTS="${INSTRUCTIONS_REQUESTS:-2000}"
PASSWORD="bench-password-not-a-secret"
unset PORTCULLIS_REDIS_URL PORTCULLIS_MONGODB_URI PORTCULLIS_CONFIG RUST_LOG

say() { printf 'instructions: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# shellcheck source=benches/load/lib.sh
source "$HERE/lib.sh"
require_tools nginx redis-server valgrind callgrind_control callgrind_annotate curl python3
open_work_dir portcullis-instructions

read -r UPSTREAM_PORT REDIS_PORT GATEWAY_PORT < <(free_ports 3)
start_upstream_and_redis

cat >"$WORK/gateway.yaml" <<EOF
listen:
  http: {address: "127.0.0.1:$GATEWAY_PORT"}
  metrics: null
data_dir: $WORK/gateway-data
upstreams:
  app: {servers: ["127.0.0.1:$UPSTREAM_PORT"]}
routes:
  - {path_prefix: /public, upstream: app, public: true}
  - {path_prefix: /api, upstream: app}
# The benchmark signs in over plain HTTP on loopback.
oauth: {bcrypt_cost: 4, allow_plaintext: true}
tokens: {kind: redis, redis: {url: "redis://127.0.0.1:$REDIS_PORT/0"}}
server: {threads: 2, grace_period_seconds: 0, shutdown_timeout_seconds: 1}
EOF
echo "$PASSWORD" | "$GATEWAY_BIN" -c "$WORK/gateway.yaml" user add bench --password-stdin --json >/dev/null
CLIENT_ID="$("$GATEWAY_BIN" -c "$WORK/gateway.yaml" client add bench --json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')"

# Counting starts off (--instr-atstart=no): start-up is not measured.
start gateway valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    --dump-instr=no --instr-atstart=no "$GATEWAY_BIN" -c "$WORK/gateway.yaml" serve
GATEWAY_PID=$STARTED_PID
wait_for_port "$GATEWAY_PORT" "portcullis under valgrind" "$GATEWAY_PID"

TOKEN="$(curl -s -X POST --data "grant_type=password&client_id=$CLIENT_ID&username=bench&password=$PASSWORD" \
    "http://127.0.0.1:$GATEWAY_PORT/oauth/token" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')" \
    || die "could not get an access token (logs in $WORK; set BENCH_KEEP=1)"

# send PATH COUNT: COUNT GETs over 4 keep-alive connections; each must be 200.
send() {
    python3 - "$GATEWAY_PORT" "$1" "$2" "$TOKEN" <<'EOF'
import http.client, sys
port, path, count, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
connections = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(4)]
headers = {} if path.startswith("/public") else {"Authorization": "Bearer " + token}
for i in range(count):
    connection = connections[i % 4]
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{path} answered {response.status}")
EOF
}

# Warm-up: connections to the upstream and Redis made, lazy state built.
send /public/items 200
send /api/items 200

count_scenario() {
    local name="$1" path="$2"
    callgrind_control --zero "$GATEWAY_PID" >/dev/null 2>&1
    callgrind_control --instr=on "$GATEWAY_PID" >/dev/null 2>&1
    send "$path" "$REQUESTS"
    callgrind_control --instr=off "$GATEWAY_PID" >/dev/null 2>&1
    callgrind_control --dump="$name" "$GATEWAY_PID" >/dev/null 2>&1
}
count_scenario c /public/items
count_scenario e /api/items
stop "$GATEWAY_PID" INT

# Dumps are numbered in the order made: .1 is (c), .2 is (e).
report() {
    local label="$1" dump="$2" total
    total="$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen {gsub(",", "", $1); print $1; seen = 1}')"
    [ -n "$total" ] || die "no totals in $dump"
    printf '%s: %d instructions per request (%d requests)\n' "$label" "$((total / REQUESTS))" "$REQUESTS"
    # Our own functions by inclusive count (what each costs with all it
    # calls), the largest first: where a request's instructions go in our code.
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null \
        | awk -v n="$REQUESTS" '/^ *[0-9,]+ \(/ && /\.rs:/ && /portcullis::/ {
              count = $1; gsub(",", "", count)
              name = $0; sub(/^[^:]*\.rs:/, "", name); sub(/ \[.*$/, "", name); sub(/ \([0-9,]+x\)$/, "", name)
              if (!(name in best) || count > best[name]) best[name] = count
          }
          END { for (name in best) printf "%9d  %s\n", best[name] / n, name }' \
        | sort -rn | head -"${INSTRUCTIONS_TOP:-8}"
}
report "(c) public route" "$WORK/callgrind.out.1"
report "(e) Bearer token, Redis" "$WORK/callgrind.out.2"
