-- wrk script for benchmarks/wrk.py: checks every response, then reports as JSON.
--
-- wrk -s verify.lua URL EXPECTED_STATUS EXPECTED_BODY
--
-- Each response whose status is not EXPECTED_STATUS, or whose body is not
-- EXPECTED_BODY byte for byte, is counted; done() prints one line
-- "WRK-RESULT {json}" with wrk's own summary, latency percentiles (in
-- microseconds) and these counters, for every thread.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   expected_status = tonumber(args[1])
   expected_body = args[2] or ""
   responses = 0
   bad_status = 0
   bad_body = 0
   first_bad = ""
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= expected_status then
      bad_status = bad_status + 1
      if first_bad == "" then first_bad = "status " .. status end
   elseif body ~= expected_body then
      bad_body = bad_body + 1
      if first_bad == "" then first_bad = "body of " .. #(body or "") .. " bytes" end
   end
end

function done(summary, latency, requests)
   local total, status, body, first = 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      total = total + thread:get("responses")
      status = status + thread:get("bad_status")
      body = body + thread:get("bad_body")
      if first == "" then first = thread:get("first_bad") end
   end
   local e = summary.errors
   io.write(string.format(
      'WRK-RESULT {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
      '"responses": %d, "bad_status": %d, "bad_body": %d, "first_bad": "%s"}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      total, status, body, first))
end
