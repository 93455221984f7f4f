# shellcheck shell=bash
# Helpers for benches/load/run.sh and instructions.sh, which source this
# after setting HERE, GATEWAY_BIN and their own say() and die(). The load
# helpers also read RESULTS, CLOCK_TICKS, CONNECTIONS, WRK_THREADS,
# DURATION, WARMUP and ROUND.

# --- the work folder, and the fixed parts ----------------------------------

# open_work_dir NAME: a temporary folder in WORK; on exit every process that
# start() started is stopped and the folder removed (kept with BENCH_KEEP=1).
open_work_dir() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    STARTED_PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}

# require_tools COMMAND...: dies naming the first one missing.
require_tools() {
    local tool
    [ -x "$GATEWAY_BIN" ] || die "no release binary at $GATEWAY_BIN: run scripts/bench (it builds one)"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing: run scripts/bench, which installs it"
    done
}

# start_upstream_and_redis: the static upstream (nginx, one worker, a
# 100-byte file, as in the Pingora throughput notes) and redis-server, on
# UPSTREAM_PORT and REDIS_PORT; sets UPSTREAM_PID and REDIS_PID.
start_upstream_and_redis() {
    mkdir -p "$WORK/www" "$WORK/nginx-temp" "$WORK/gateway-data"
    printf '%099d\n' 0 >"$WORK/www/body.txt"
    # nginx workers drop root privileges (user nobody) and must read these.
    chmod 755 "$WORK" "$WORK/www"
    chmod 777 "$WORK/nginx-temp"
    fill_template "$HERE/upstream.nginx.conf" "$WORK/upstream.conf"
    start upstream nginx -p "$WORK" -e "$WORK/upstream-error.log" -c "$WORK/upstream.conf"
    UPSTREAM_PID=$STARTED_PID
    wait_for_port "$UPSTREAM_PORT" "the upstream nginx" "$UPSTREAM_PID"
    start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$WORK"
    REDIS_PID=$STARTED_PID
    wait_for_port "$REDIS_PORT" "redis-server" "$REDIS_PID"
}

# fill_template TEMPLATE OUTPUT: the @NAME@ placeholders of the nginx configs.
fill_template() {
    sed -e "s|@WORK@|$WORK|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
        -e "s|@PROXY_PORT@|${PROXY_PORT:-}|g" -e "s|@WORKERS@|${GATEWAY_THREADS:-1}|g" "$1" >"$2"
}

# --- processes -------------------------------------------------------------

# Prints N distinct free loopback ports (bound together, then released).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

wait_for_port() {
    local port="$1" what="$2" pid="$3" tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || die "$what exited at startup; its log is in $WORK (set BENCH_KEEP=1 to keep it)"
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || die "$what did not open port $port within 20 s"
        sleep 0.1
    done
}

# Starts a command in the background, logging to $WORK/NAME.log; sets
# STARTED_PID.
start() {
    local name="$1"
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    STARTED_PID=$!
    STARTED_PIDS+=("$STARTED_PID")
}

# Stops one process started by start() and forgets it, so cleanup never
# signals a process id the system may have handed to someone else since.
stop() {
    local pid="$1" signal="${2:-TERM}" kept=() other
    if kill "-$signal" "$pid" 2>/dev/null; then
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for other in "${STARTED_PIDS[@]}"; do
        [ "$other" = "$pid" ] || kept+=("$other")
    done
    STARTED_PIDS=("${kept[@]}")
}

# A process and its children (nginx: the master and its workers).
process_tree() {
    echo "$1" $(pgrep -P "$1" || true)
}

# utime + stime of the processes, in clock ticks (all threads included).
cpu_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        # Fields after the `(comm)`, which may contain spaces: utime and
        # stime are the 12th and 13th.
        fields="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)" || continue
        total=$((total + $(echo "$fields" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

# Sum of each process's lifetime peak resident set (VmHWM), in KiB.
peak_rss_kib() {
    local total=0 pid kib
    for pid in "$@"; do
        kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || continue
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

now_ns() { date +%s%N; }

# Busy clock ticks of the whole machine, all cores (everything but idle and
# iowait): shows whether something besides the benchmark took CPU.
machine_busy_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# --- load ------------------------------------------------------------------

# run_wrk OUTPUT_FILE CONNECTIONS THREADS SECONDS URL: prints the BENCH_RESULT
# fields. The request shape comes from BENCH_TOKEN and BENCH_BODY (wrk.lua).
run_wrk() {
    local output="$1" connections="$2" threads="$3" seconds="$4" url="$5"
    # Same priority as the servers: a load generator starved of CPU would
    # measure itself.
    wrk --latency --timeout 30s -t"$threads" -c"$connections" -d"${seconds}s" \
        -s "$HERE/wrk.lua" "$url" >"$output" 2>&1 || die "wrk failed: $(cat "$output")"
    grep '^BENCH_RESULT ' "$output" | sed 's/^BENCH_RESULT //' \
        || die "wrk printed no result line: $(cat "$output")"
}

# measure ID PROCESS_NAME URL PIDS...: a warm-up, then the measured run;
# appends one line to $RESULTS with wrk's figures and the processes' CPU
# (percent of one core over the run) and peak RSS.
measure() {
    local id="$1" process="$2" url="$3"
    shift 3
    local warmup="${MEASURE_WARMUP:-$WARMUP}"
    wait_for_quiet
    say "($id) $url, $CONNECTIONS connections, ${DURATION}s"
    if [ "$warmup" -gt 0 ]; then
        run_wrk "$WORK/$id.r$ROUND.warmup.wrk" "$CONNECTIONS" "$WRK_THREADS" "$warmup" "$url" >/dev/null
    fi
    local fields
    begin_window "$@"
    fields="$(run_wrk "$WORK/$id.r$ROUND.wrk" "$CONNECTIONS" "$WRK_THREADS" "$DURATION" "$url")"
    record "$id" "$process" "$fields" "$@"
}

# begin_window PIDS...: notes the CPU counters at the start of a measured run.
# The upstream nginx and redis-server are counted too, to show where the
# machine's CPU went.
begin_window() {
    WINDOW_TICKS="$(cpu_ticks "$@")"
    WINDOW_UPSTREAM_TICKS="$(cpu_ticks $(process_tree "$UPSTREAM_PID"))"
    WINDOW_REDIS_TICKS="$(cpu_ticks "$REDIS_PID")"
    WINDOW_MACHINE_TICKS="$(machine_busy_ticks)"
    WINDOW_STARTED="$(now_ns)"
}

# Percent of one core over the window, from a tick delta.
window_pct() {
    awk -v t="$1" -v hz="$CLOCK_TICKS" -v ns="$(($(now_ns) - WINDOW_STARTED))" \
        'BEGIN {printf "%.0f", 100 * (t / hz) / (ns / 1e9)}'
}

# record ID PROCESS FIELDS PIDS...: ends the window and appends the line.
record() {
    local id="$1" process="$2" fields="$3" cpu_pct upstream_pct redis_pct machine_pct
    shift 3
    cpu_pct="$(window_pct "$(($(cpu_ticks "$@") - WINDOW_TICKS))")"
    upstream_pct="$(window_pct "$(($(cpu_ticks $(process_tree "$UPSTREAM_PID")) - WINDOW_UPSTREAM_TICKS))")"
    redis_pct="$(window_pct "$(($(cpu_ticks "$REDIS_PID") - WINDOW_REDIS_TICKS))")"
    machine_pct="$(window_pct "$(($(machine_busy_ticks) - WINDOW_MACHINE_TICKS))")"
    echo "id=$id round=$ROUND process=$process connections=${CONNECTIONS} $fields cpu_pct=$cpu_pct" \
        "upstream_pct=$upstream_pct redis_pct=$redis_pct machine_pct=$machine_pct" \
        "peak_rss_kib=$(peak_rss_kib "$@")" >>"$RESULTS"
}

expect_status() {
    local expected="$1" url="$2"
    shift 2
    local status
    status="$(curl -sk -o /dev/null -w '%{http_code}' "$@" "$url")"
    [ "$status" = "$expected" ] || die "$url answered $status, expected $expected (logs in $WORK; set BENCH_KEEP=1 to keep them)"
}

# --- the machine -----------------------------------------------------------

# Everything shares the machine's cores, so something else running skews the
# ratios. Before each scenario, wait (up to BENCH_QUIET_WAIT_SECONDS, default
# 60) for one second in which the machine is under 20% busy (of one core).
wait_for_quiet() {
    local waited=0 before pct
    while :; do
        before="$(machine_busy_ticks)"
        sleep 1
        pct=$(( ($(machine_busy_ticks) - before) * 100 / CLOCK_TICKS ))
        [ "$pct" -ge 20 ] || return 0
        waited=$((waited + 1))
        if [ "$waited" -ge "${BENCH_QUIET_WAIT_SECONDS:-60}" ]; then
            say "warning: the machine is still ${pct}% busy (of one core) from other work; going on, the ratios will be noisier"
            BUSY_WARNINGS=$((BUSY_WARNINGS + 1))
            return 0
        fi
    done
}
