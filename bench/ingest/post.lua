-- post.lua - wrk script for bench/ingest: POST signed Stripe events.
--
-- Environment:
--   BENCH_POOL      file written by gen_events.py (signature header, length, body)
--   BENCH_PATH      request path (default /webhooks/stripe)
--   BENCH_DELAY_MS  if > 0: rate-limited mode. After each response a connection
--                   waits an exponentially distributed time of this mean (in ms,
--                   randomly rounded to wrk's 1 ms timer so the mean holds)
--                   before its next request. C connections then offer about
--                   C / (mean + latency) requests/s in Poisson-like arrivals:
--                   the open-loop load wrk2 would give, approximated in wrk.
--
-- Every request is formatted once in init(); request() only hands out the next
-- one, so wrk spends its CPU on sockets, not on Lua.
-- done() prints one machine-readable line, "BENCH k=v ...", for bench/ingest/run.

local pool_path = os.getenv("BENCH_POOL")
local path = os.getenv("BENCH_PATH") or "/webhooks/stripe"
local mean_delay = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

local reqs = {}
local n = 0
local idx = 0
local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
    table.insert(threads, thread)
end

function init(args)
    local f = assert(io.open(pool_path, "rb"), "cannot open BENCH_POOL")
    while true do
        local sig = f:read("*l")
        if not sig or sig == "" then break end
        local len = tonumber(f:read("*l"))
        local body = f:read(len)
        f:read("*l")
        n = n + 1
        reqs[n] = wrk.format("POST", path, {
            ["Content-Type"] = "application/json; charset=utf-8",
            ["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            ["Stripe-Signature"] = sig,
        }, body)
    end
    f:close()
    assert(n > 0, "empty BENCH_POOL")
    math.randomseed((tid or 1) * 7919 + os.time())
    idx = math.random(n) -- threads start at different places in the pool
end

function request()
    idx = idx % n + 1
    return reqs[idx]
end

if mean_delay > 0 then
    function delay()
        local x = -math.log(1 - math.random()) * mean_delay
        local d = math.floor(x)
        if math.random() < x - d then d = d + 1 end
        return d
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d rps=%.1f bytes=%d non2xx=%d "
        .. "err_connect=%d err_read=%d err_write=%d err_timeout=%d "
        .. "p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
        summary.requests, summary.duration, summary.requests / summary.duration * 1e6,
        summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean))
end
