-- wrk script for the benchmarks, driven by environment variables:
--   BENCH_METHOD (GET), BENCH_PATH (/), BENCH_AUTH (Authorization value),
--   BENCH_BODY + BENCH_CT (request body and its content type),
--   BENCH_PROOFS (file of DPoP proofs, one per line, each used once; run with -t1),
--   BENCH_REFRESH_TOKENS (file of refresh tokens, one per connection: each request
--   presents one, and the rotated token from its response goes back to the pool,
--   so every token is presented exactly once; run with -t1 and -c = the file's lines).
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
local refresh_file = os.getenv("BENCH_REFRESH_TOKENS")
local pool = nil

local function lines(file)
  local t = {}
  for line in io.lines(file) do
    if #line > 0 then t[#t + 1] = line end
  end
  return t
end

function init(args)
  if proofs_file then proofs = lines(proofs_file) end
  if refresh_file then pool = lines(refresh_file) end
end

-- A rotation's new refresh token goes back to the pool (a failed one ends
-- its chain). Defined only in that mode: wrk reads bodies only for scripts
-- that have a response() function.
if refresh_file then
  function response(status, headers, body)
    local t = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if t then pool[#pool + 1] = t end
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
  if pool then
    -- An empty pool means a chain broke; the request then fails visibly (non-2xx).
    local t = table.remove(pool) or "chain-broken"
    return wrk.format(method, path, headers, "grant_type=refresh_token&refresh_token=" .. t)
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
