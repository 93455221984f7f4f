-- One wrk script for every scenario. The request comes from the environment:
--   BENCH_TOKEN   adds `Authorization: Bearer <token>`
--   BENCH_BODY    makes the request a form POST with this body
-- done() prints one parseable line that run.sh collects.

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        "BENCH_RESULT requests=%d duration_us=%d mean_us=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d"
            .. " connect_errors=%d read_errors=%d write_errors=%d status_errors=%d timeouts=%d\n",
        summary.requests, summary.duration, latency.mean,
        latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
        errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
