-- wrk script for tests/bench/run.sh: POST a JSON body read from a file, with extra headers.
--   wrk -s post.lua URL -- BODY_FILE ['Header: value' ...]
-- At the end it prints one machine-readable line (latencies in microseconds from wrk's
-- histogram), which run.sh reads instead of scraping wrk's human table:
--   WRK requests=.. duration_us=.. rps=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. mean_us=..
--       err_connect=.. err_read=.. err_write=.. err_timeout=.. err_status=..

function init(args)
    local f = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
    wrk.body = f:read("*a")
    f:close()
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    for i = 2, #args do
        local k, v = args[i]:match("^([^:]+):%s*(.*)$")
        if k then
            wrk.headers[k] = v
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "WRK requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f " ..
        "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
        summary.requests, summary.duration, summary.requests / secs,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        latency.mean, e.connect, e.read, e.write, e.timeout, e.status))
end
