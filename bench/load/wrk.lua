-- wrk script for the benchmarks, driven by environment variables:
--   BENCH_METHOD (GET), BENCH_PATH (/), BENCH_AUTH (Authorization value),
--   BENCH_BODY + BENCH_CT (request body and its content type),
--   BENCH_PROOFS (file of DPoP proofs, one per line, each used once; run with -t1).
-- done() prints one line "BENCH_RESULT {json}" for bench/run.mjs.
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local auth = os.getenv("BENCH_AUTH")
local body = os.getenv("BENCH_BODY")
local ct = os.getenv("BENCH_CT")
local proofs_file = os.getenv("BENCH_PROOFS")
local proofs = nil
local idx = 0
local exhausted = 0

function init(args)
  if proofs_file then
    proofs = {}
    for line in io.lines(proofs_file) do
      if #line > 0 then proofs[#proofs + 1] = line end
    end
  end
end

function request()
  local headers = {}
  if auth then headers["Authorization"] = auth end
  if ct then headers["Content-Type"] = ct end
  if proofs then
    idx = idx + 1
    if idx > #proofs then
      idx = 1
      exhausted = exhausted + 1
    end
    headers["DPoP"] = proofs[idx]
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"secs":%.3f,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,"non2xx":%d,"connect_err":%d,"read_err":%d,"timeout":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.status, e.connect, e.read, e.timeout))
end
