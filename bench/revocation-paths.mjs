// Revocation propagation through each path (issue 21.4), run by scripts/bench
// (or alone: `node bench/revocation-paths.mjs` after scripts/build-edge and a
// release build of the origin). One origin (SQLite) pushes to an edge under
// `wrangler dev`, started twice on the same port:
//   fast    — regional replicas on (REVOCATION_REFRESH_SECS=2), KV TTL 5 s
//   kv-only — REVOCATION_REPLICAS=off, KV TTL 5 s (REVOCATION_TTL_SECS)
// both with REVOCATION_ADOPT_ON_INGEST=false, so the isolate that took the
// push learns of it like every other isolate in production would: through
// its replica or KV. Each sample: a fresh token (accepted), RFC 7009 revoke,
// then the edge polled every 10 ms until it answers 401.
// Writes $BENCH_WORK/revocation_paths.json and revocation_paths.md (the
// BENCHMARKS.md section, with the paper model of worldwide propagation and
// cost). BENCH_REVOCATION_PATH_SAMPLES (16) on the fast path (issue 21's
// target), BENCH_REVOCATION_KV_SAMPLES (10) on the KV-only path, the
// comparison (~5 s a sample: a pause over the 5 s TTL, then the wait);
// about 2 minutes.
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const WORK = process.env.BENCH_WORK || path.join(ROOT, "target/bench");
const RUN = path.join(WORK, "revocation-paths");
const BIN = process.env.BENCH_BIN || path.join(ROOT, "target/release");
const SAMPLES = Number(process.env.BENCH_REVOCATION_PATH_SAMPLES || 16);
const KV_SAMPLES = Number(process.env.BENCH_REVOCATION_KV_SAMPLES || 10);
const EDGE_BUILD = process.env.BENCH_EDGE_BUILD || path.join(ROOT, "edge/build");
const N = 2;
const KV_TTL = 5;
const ADMIN = randomBytes(24).toString("hex");
const log = (...a) => console.error("[revocation-paths]", ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

fs.rmSync(RUN, { recursive: true, force: true });
fs.mkdirSync(RUN, { recursive: true });

const children = [];
function spawnBg(name, cmd, args, env) {
  const out = fs.openSync(path.join(RUN, `${name}.log`), "w");
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", out, out], detached: true });
  child.benchName = name;
  children.push(child);
  return child;
}
function stop(child, sig = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {}
}
process.on("exit", () => children.forEach((c) => stop(c, "SIGKILL")));
for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(s, () => process.exit(130));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
    s.on("error", rej);
  });
}
async function waitUp(url, child, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await r.arrayBuffer();
      if (r.status < 500) return;
    } catch {}
    if (child.exitCode !== null) throw new Error(`${child.benchName} exited; see ${RUN}/${child.benchName}.log`);
    if (Date.now() > deadline) throw new Error(`${child.benchName} not up at ${url}`);
    await sleep(100);
  }
}

const edgePort = await freePort();
const edgeUrl = `http://127.0.0.1:${edgePort}`;
const originPort = await freePort();
const originUrl = `http://127.0.0.1:${originPort}`;
const upPort = await freePort();
const originDir = path.join(RUN, "origin");
fs.mkdirSync(originDir, { recursive: true });
const originEnv = {
  ...process.env,
  GATEHOUSE_LISTEN: `127.0.0.1:${originPort}`,
  GATEHOUSE_ISSUER: originUrl,
  GATEHOUSE_DATABASE_URL: `sqlite://${originDir}/gatehouse.db`,
  GATEHOUSE_DATA_DIR: originDir,
  GATEHOUSE_ADMIN_TOKEN: ADMIN,
  GATEHOUSE_TOKEN_RATE: "100000000",
  GATEHOUSE_EDGE_URL: edgeUrl,
  GATEHOUSE_LOG: "warn",
};
delete originEnv.GATEHOUSE_CONFIG;

const upstream = spawnBg("upstream", path.join(BIN, "gatehouse-demo-upstream"), [`127.0.0.1:${upPort}`], process.env);
const origin = spawnBg("origin", path.join(BIN, "gatehouse-origin"), ["serve", "--dev"], originEnv);
await waitUp(`${originUrl}/.well-known/jwks.json`, origin, 60000);
await waitUp(`http://127.0.0.1:${upPort}/`, upstream, 30000);
const created = JSON.parse(
  execFileSync(path.join(BIN, "gatehouse-origin"), ["client", "create", "--name", "revpaths", "--scope", "read", "--audience", edgeUrl], { env: originEnv })
    .toString()
    .trim(),
);
const basic = "Basic " + Buffer.from(`${encodeURIComponent(created.client_id)}:${encodeURIComponent(created.client_secret)}`).toString("base64");
const form = { authorization: basic, "content-type": "application/x-www-form-urlencoded" };

// The repository's wrangler.toml minus [build] and [vars], main at the build, our vars.
const baseToml = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
function edgeToml(vars) {
  const out = [];
  let skip = false;
  for (const line of baseToml.split("\n")) {
    const sec = /^\s*\[+([^\]]+)\]+/.exec(line);
    if (sec) skip = ["build", "vars"].includes(sec[1].trim()) || sec[1].trim().startsWith("env.");
    if (skip) continue;
    out.push(/^main\s*=/.test(line) ? `main = ${JSON.stringify(path.join(EDGE_BUILD, "worker/shim.mjs"))}` : line);
  }
  const v = Object.entries(vars).map(([k, x]) => `${k} = ${JSON.stringify(String(x))}`).join("\n");
  return out.join("\n") + "\n[vars]\n" + v + "\n";
}

// `period`: the path's refresh period in seconds; each revocation is made
// at a random phase of it (uniform over one period after the previous
// sample ended), as real revocations are, instead of right after the read
// that ended the previous sample.
async function measure(name, period, samplesWanted, extraVars) {
  const dir = path.join(RUN, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "wrangler.toml"),
    edgeToml({
      ISSUER: originUrl, AUDIENCE: edgeUrl, JWKS_URL: `${originUrl}/.well-known/jwks.json`,
      UPSTREAM_URL: `http://127.0.0.1:${upPort}`, REQUEST_LOG: "off",
      RATE_LIMIT_IP: "1000000/60", RATE_LIMIT_CLIENT: "1000000/60",
      REVOCATION_TTL_SECS: KV_TTL, REVOCATION_REFRESH_SECS: N, REVOCATION_ADOPT_ON_INGEST: "false",
      ...extraVars,
    }),
  );
  const edge = spawnBg(`edge-${name}`, path.join(ROOT, "node_modules/.bin/wrangler"),
    ["dev", "--local", "--ip", "127.0.0.1", "--show-interactive-dev-session=false",
      "--config", path.join(dir, "wrangler.toml"), "--port", String(edgePort),
      "--inspector-port", String(await freePort()), "--persist-to", path.join(dir, "state")],
    { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_LOG_PATH: path.join(dir, "wrangler-logs") });
  await waitUp(`${edgeUrl}/.gatehouse/health`, edge, 180000);
  const status = async (t) => {
    const r = await fetch(`${edgeUrl}/orders/1`, { headers: { authorization: `Bearer ${t}` } });
    await r.arrayBuffer();
    return r.status;
  };
  const samples = [];
  for (let i = 0; i < samplesWanted; i++) {
    const tr = await fetch(`${originUrl}/token`, { method: "POST", headers: form, body: "grant_type=client_credentials" });
    const t = (await tr.json()).access_token;
    if ((await status(t)) !== 200) throw new Error(`${name}: a fresh token was not accepted`);
    await sleep(Math.random() * period * 1000);
    const rv = await fetch(`${originUrl}/revoke`, { method: "POST", headers: form, body: new URLSearchParams({ token: t }) });
    await rv.arrayBuffer();
    if (rv.status !== 200) throw new Error(`${name}: revoke answered ${rv.status}`);
    const t0 = performance.now();
    for (;;) {
      const s = await status(t);
      if (s === 401) break;
      if (s !== 200) throw new Error(`${name}: edge answered ${s}`);
      if (performance.now() - t0 > 30000) throw new Error(`${name}: not refused within 30 s`);
      await sleep(10);
    }
    samples.push(performance.now() - t0);
  }
  stop(edge);
  await sleep(1500);
  stop(edge, "SIGKILL");
  samples.sort((a, b) => a - b);
  const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((samples.length * p) / 100))];
  const r = { n: samples.length, p50: pct(50), p99: pct(99), max: samples[samples.length - 1] };
  log(`${name}: p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, max ${r.max.toFixed(0)} ms (n=${r.n})`);
  return r;
}

log(`fast path (replicas, N=${N} s) x${SAMPLES}`);
const fast = await measure("fast", N, SAMPLES, {});
log(`KV-only path (TTL ${KV_TTL} s) x${KV_SAMPLES}`);
const kvOnly = await measure("kv-only", KV_TTL, KV_SAMPLES, { REVOCATION_REPLICAS: "off" });
children.forEach((c) => stop(c));

// ---------- paper model ----------
// Assumptions (stated in the report): prices as published by Cloudflare.
const M = {
  colos: 330, isolatesPerColo: 2, regions: 9, n: N, kvTtl: KV_TTL,
  kvPropagationS: 60, // KV: cached values elsewhere refresh on their cache TTL (60 s default)
  fanoutS: 0.3, // ingest store → farthest replica, one cross-continent round trip and a storage write
  replicaReadS: 0.05, // isolate → its region's replica
  doPerMillion: 0.15, doGbSecPerMillion: 12.5, kvReadPerMillion: 0.5, workersPerMillion: 0.3,
  apiRps: [100, 1000, 10000],
};
const isolates = M.colos * M.isolatesPerColo;
const doPerIsolateMin = 60 / M.n;
const kvPerIsolateMin = 60 / M.kvTtl;
const perMillion = (perIsolateMin, rps) => Math.min(1, (isolates * perIsolateMin) / 60 / rps) * 1e6;
const monthS = 30 * 86400;
const durationUsdMonth = M.regions * 0.125 * monthS * (M.doGbSecPerMillion / 1e6);
const results = { date: new Date().toISOString(), samples: SAMPLES, kvSamples: KV_SAMPLES, fast, kvOnly, model: M };
fs.writeFileSync(path.join(WORK, "revocation_paths.json"), JSON.stringify(results, null, 2));

const f0 = (x) => Math.round(x).toLocaleString("en-US");
const f1 = (x) => x.toFixed(1);
const f3 = (x) => x.toFixed(3);
const L = [];
const p = (s = "") => L.push(s);
p("### Revocation propagation per path (issue 21.4)");
p();
p(`Measured by \`bench/revocation-paths.mjs\` (${new Date().toISOString().slice(0, 10)}): one origin pushing to an edge under \`wrangler dev\`, started once per path on the same port. Time from RFC 7009 \`POST /revoke\` returning 200 to the edge answering 401, polled every 10 ms, ${SAMPLES} revocations one after another on the fast path and ${KV_SAMPLES} on the KV-only path (the comparison), each at a random phase of the path's period (a pause uniform over N, resp. the KV TTL, before the revoke); origin and upstream from \`${path.relative(ROOT, BIN)}\`. \`REVOCATION_ADOPT_ON_INGEST=false\` on both, so the isolate that took the push does not use it directly: it learns of it through its replica or KV, as every other isolate in production does. Locally "KV" is a local store read every \`REVOCATION_TTL_SECS\`; Cloudflare's own KV propagation (below) comes on top in production.`);
p();
p("| path | settings | n | p50 ms | p99 ms | max ms |");
p("|---|---|---:|---:|---:|---:|");
p(`| fast (regional replicas) | \`REVOCATION_REFRESH_SECS=${N}\`, 9 local replicas, KV TTL ${KV_TTL} s beside | ${fast.n} | ${f0(fast.p50)} | ${f0(fast.p99)} | ${f0(fast.max)} |`);
p(`| KV only | \`REVOCATION_REPLICAS=off\`, \`REVOCATION_TTL_SECS=${KV_TTL}\` | ${kvOnly.n} | ${f0(kvOnly.p50)} | ${f0(kvOnly.p99)} | ${f0(kvOnly.max)} |`);
p();
p(`With so few samples p99 is the largest sample. The fast path is bounded by N (a read starts at most every ${N} s, on the next request after that) plus the push and one local Durable Object round trip; the e2e test \`fast_revocation::a_revocation_is_refused_within_n_plus_one_seconds_through_the_replicas\` holds it to N + 1 s with the KV TTL at an hour.`);
p();
p("**Paper model, worldwide.** Assumptions: " +
  `${M.colos} Cloudflare locations with ${M.isolatesPerColo} busy isolates each (${f0(isolates)} isolates, all serving traffic); one issuer; ${M.regions} replicas (every location hint); N = ${M.n} s; \`REVOCATION_TTL_SECS\` = ${M.kvTtl} s; ` +
  `KV: a value cached at a location is refreshed on its cache TTL, 60 s by default (Cloudflare, "How KV works", https://developers.cloudflare.com/kv/concepts/how-kv-works/ — "up to 60 seconds or more"); ` +
  `push to the farthest replica ≈ ${M.fanoutS * 1000} ms (one cross-continent round trip plus a storage write), isolate → its region's replica ≈ ${M.replicaReadS * 1000} ms (assumed, not measured). ` +
  `Prices (Workers Paid): Durable Objects $${M.doPerMillion} per million requests and $${M.doGbSecPerMillion} per million GB-s of duration (https://developers.cloudflare.com/durable-objects/platform/pricing/); KV reads $${M.kvReadPerMillion} per million and Workers requests $${M.workersPerMillion} per million (assumed from Cloudflare's published pricing; not re-checked here); free allowances ignored.`);
p();
p("| | KV only | fast path (replicas + KV) |");
p("|---|---:|---:|");
p(`| time until every isolate refuses, worst case | ≈ ${M.kvPropagationS + M.kvTtl} s (KV ${M.kvPropagationS} s + TTL ${M.kvTtl} s) | ≈ ${f1(M.fanoutS + M.n + M.replicaReadS)} s (fan-out ${M.fanoutS} s + N ${M.n} s + read ${M.replicaReadS} s) |`);
p(`| typical (mean) | ≈ ${f1(M.kvPropagationS / 2 + M.kvTtl / 2)} s | ≈ ${f1(M.fanoutS / 2 + M.n / 2 + M.replicaReadS)} s |`);
p(`| storage reads per busy isolate per minute | ${f0(kvPerIsolateMin)} KV reads | ${f0(kvPerIsolateMin)} KV reads + ${f0(doPerIsolateMin)} Durable Object requests |`);
p(`| writes per revocation push | 1 KV write + 1 DO request (ingest store) | + ${M.regions} DO requests (one per replica) |`);
for (const rps of M.apiRps) {
  const kv = perMillion(kvPerIsolateMin, rps);
  const dor = perMillion(doPerIsolateMin, rps);
  p(`| per million API requests at ${f0(rps)} req/s worldwide | ${f0(kv)} KV reads ($${f3((kv / 1e6) * M.kvReadPerMillion)}) | + ${f0(dor)} DO requests (+$${f3((dor / 1e6) * M.doPerMillion)}, ${f1(((dor / 1e6) * M.doPerMillion / M.workersPerMillion) * 100)} % of the Workers request price) |`);
}
p(`| replica duration (each kept awake by its region's reads: 128 MB × 30 days) | – | ≈ $${f1(durationUsdMonth)} per month for ${M.regions} replicas |`);
p();
p(`Reads are request-driven: an idle isolate reads nothing, and an isolate serving fewer than one request per N s reads at most once per request; the per-million figures use min(1, isolates × reads per second / API requests per second). Once all ${f0(isolates)} isolates are busy (each serving at least one request per N s) the fast path costs at most ${f0(isolates * doPerIsolateMin)} Durable Object requests a minute (≈ $${f1(isolates * doPerIsolateMin * 60 * 24 * 30 / 1e6 * M.doPerMillion)} a month) plus the replicas' duration, however much more traffic comes; at low traffic (the 100 req/s row) the cap is the requests themselves; raising N halves it per doubling, and with the fast path carrying revocations \`REVOCATION_TTL_SECS\` can be raised (KV stays the fallback) to cut the KV reads it adds to. In the origin's \`cloudflare\` push mode (KV written directly) the replicas are not fed and KV's time applies.`);
p();
fs.writeFileSync(path.join(WORK, "revocation_paths.md"), L.join("\n"));
log(`wrote ${path.join(WORK, "revocation_paths.md")}`);
process.exit(0);
