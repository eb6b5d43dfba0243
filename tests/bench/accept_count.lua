-- wrk script for tests/bench/bench_accept.sh: counts responses per worker pid (dk-hello's
-- GET / body is "hello from c pid N") and prints one line of figures at the end:
--   RESULT requests=R rps=X non2xx=N sockerr=E p50_us=A p99_us=B pids=K max=M min=m
-- (max/min: responses of the busiest / least busy pid that answered at all).
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

counts = {}

function response(status, headers, body)
    local pid = body and body:match("pid (%d+)")
    if pid then
        counts[pid] = (counts[pid] or 0) + 1
    end
end

function done(summary, latency, requests)
    local total, pids, max, min = {}, 0, 0, nil
    for _, t in ipairs(threads) do
        for pid, n in pairs(t:get("counts") or {}) do
            total[pid] = (total[pid] or 0) + n
        end
    end
    for _, n in pairs(total) do
        pids = pids + 1
        if n > max then max = n end
        if min == nil or n < min then min = n end
    end
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d rps=%.0f non2xx=%d sockerr=%d p50_us=%d p99_us=%d pids=%d max=%d min=%d\n",
        summary.requests, summary.requests / (summary.duration / 1e6), e.status,
        e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99),
        pids, max, min or 0))
end
