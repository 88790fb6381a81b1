// The benchmark run behind scripts/bench: starts origins (SQLite ES256 + EdDSA,
// PostgreSQL), the demo upstream and four workers under `wrangler dev`
// (Gatehouse edge, jose, bare WebCrypto, pass-through), drives them with wrk at
// a fixed concurrency, measures issuance, revocation propagation and cold
// paths, and writes BENCHMARKS.md. Everything listens on 127.0.0.1 only; every
// process started here is stopped at exit (process groups, SIGTERM then SIGKILL).
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { randomBytes, createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import { keygen, proofMaker, writeProofs, publicJwk } from "./tools.mjs";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const WORK = process.env.BENCH_WORK || path.join(ROOT, "target/bench");
const RUN = path.join(WORK, "run");
// BENCH_BIN: where the origin and upstream binaries are (target/release).
const BIN = process.env.BENCH_BIN || path.join(ROOT, "target/release");
// Seconds per edge run at BENCH_CONCURRENCY (2: ~600 requests under wrangler
// dev, ~3,000 on workerd directly, i.e. 60–200 ticks of CPU time at 100/s;
// the round-to-round spread in the run of 2026-12-06 was 3–34 %, far above that
// resolution, so a third second bought nothing but 90 s of run time).
const SECS = Number(process.env.BENCH_SECS || 2);
// Seconds per concurrency-1 run (latency a single user feels).
const C1_SECS = Number(process.env.BENCH_C1_SECS || 2);
// BENCH_DIRECT=0 skips the second view (each worker's workerd run directly).
const DIRECT = process.env.BENCH_DIRECT !== "0";
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const CONC = Number(process.env.BENCH_CONCURRENCY || 16);
const ISSUE_SECS = Number(process.env.BENCH_ISSUE_SECS || 8);
const REVOCATIONS = Number(process.env.BENCH_REVOCATIONS || 60);
const PG_BASE = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432";
const EDGE_ONLY = process.env.BENCH_EDGE_ONLY === "1";
// BENCH_COLD_ONLY=1: only the cold path (§5), BENCH_COLD_ROUNDS times per
// worker, each a fresh `wrangler dev`; prints the table, BENCHMARKS.md untouched.
const COLD_ONLY = process.env.BENCH_COLD_ONLY === "1";
const COLD_ROUNDS = Number(process.env.BENCH_COLD_ROUNDS || 3);
// BENCH_ORIGIN_ONLY=1: only the origin issuance (SQLite, and PostgreSQL unless
// BENCH_PG_URL is empty); prints its table, leaves BENCHMARKS.md alone.
// BENCH_ORIGIN_GRANTS (cc,dpop,refresh) picks the rows.
const ORIGIN_ONLY = process.env.BENCH_ORIGIN_ONLY === "1";
// (the grants' own names are taken too: client_credentials, refresh_token).
const GRANT_ALIASES = { client_credentials: "cc", "client_credentials+dpop": "dpop", refresh_token: "refresh" };
const ORIGIN_GRANTS = (process.env.BENCH_ORIGIN_GRANTS || "cc,dpop,refresh").split(",").map((g) => GRANT_ALIASES[g.trim()] || g.trim());
const AUD = "https://api.bench.example";
const ADMIN = randomBytes(24).toString("hex"); // per run, never stored
const started = new Date();
const loadStart = os.loadavg();
const log = (...a) => console.error("[bench]", ...a);

fs.rmSync(RUN, { recursive: true, force: true });
fs.mkdirSync(RUN, { recursive: true });

// ---------- processes ----------
const children = [];
function spawnBg(name, cmd, args, opts = {}) {
  const out = fs.openSync(path.join(RUN, `${name}.log`), "a"); // appended: a worker restarted (BENCH_COLD_ONLY) keeps one log
  const child = spawn(cmd, args, {
    cwd: opts.cwd || ROOT,
    env: opts.env || process.env,
    stdio: [opts.stdin ?? "ignore", out, out],
    detached: true, // own process group
  });
  child.benchName = name;
  children.push(child);
  return child;
}
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
}
function killAll(sig) {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(-c.pid, sig);
      } catch {}
    }
  }
}
let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  killAll("SIGTERM");
  await sleep(2000);
  killAll("SIGKILL");
}
process.on("exit", () => killAll("SIGKILL"));
for (const s of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(s, async () => {
    await cleanup();
    process.exit(130);
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
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
async function waitUp(url, child, ms, ok = (s) => s < 500) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await r.arrayBuffer();
      if (ok(r.status)) return;
    } catch {}
    if (child.exitCode !== null) throw new Error(`${child.benchName} exited; see ${RUN}/${child.benchName}.log`);
    if (Date.now() > deadline) throw new Error(`${child.benchName} not up at ${url}; see ${RUN}/${child.benchName}.log`);
    await sleep(100);
  }
}

// ---------- origin ----------
function originEnv(o) {
  const env = { ...process.env };
  delete env.GATEHOUSE_CONFIG;
  Object.assign(env, {
    GATEHOUSE_LISTEN: `127.0.0.1:${o.port}`,
    GATEHOUSE_ISSUER: o.url,
    GATEHOUSE_DATABASE_URL: o.db,
    GATEHOUSE_DATA_DIR: o.dir,
    GATEHOUSE_ADMIN_TOKEN: ADMIN,
    GATEHOUSE_TOKEN_RATE: "100000000",
    GATEHOUSE_ACCESS_TOKEN_TTL: "3600",
    GATEHOUSE_LOG: "warn",
    ...o.extra,
  });
  return env;
}
async function startOrigin(name, { db, extra = {} } = {}) {
  const port = await freePort();
  const dir = path.join(RUN, name);
  fs.mkdirSync(dir, { recursive: true });
  const o = { name, port, url: `http://127.0.0.1:${port}`, dir, db: db || `sqlite://${dir}/gatehouse.db`, extra };
  o.child = spawnBg(name, path.join(BIN, "gatehouse-origin"), ["serve", "--dev"], { env: originEnv(o) });
  await waitUp(`${o.url}/.well-known/jwks.json`, o.child, 60000, (s) => s === 200);
  return o;
}
function createClient(o) {
  const out = execFileSync(
    path.join(BIN, "gatehouse-origin"),
    ["client", "create", "--name", "bench", "--scope", "read", "--audience", AUD],
    { env: originEnv(o) },
  );
  const j = JSON.parse(out.toString().trim());
  return { id: j.client_id, secret: j.client_secret };
}
const basic = (c) =>
  "Basic " + Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString("base64");
async function getToken(o, client, dpopProof) {
  const headers = { authorization: basic(client), "content-type": "application/x-www-form-urlencoded" };
  if (dpopProof) headers.dpop = dpopProof;
  const r = await fetch(`${o.url}/token`, { method: "POST", headers, body: "grant_type=client_credentials" });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`token: ${r.status} ${JSON.stringify(j)}`);
  return j.access_token;
}

// ---------- refresh tokens through the real login ----------
// One user logs in through the origin's own login and consent forms
// (authorization_code + PKCE S256), once per chain; each code is exchanged
// for a refresh token. Returns the refresh tokens, one per line in `file`.
const CB = "https://bench.example/cb";
async function refreshTokens(o, n, file) {
  const env = { ...originEnv(o), GATEHOUSE_USER_PASSWORD: "bench password " + ADMIN };
  execFileSync(path.join(BIN, "gatehouse-origin"), ["user", "create", "bench"], { env, stdio: "pipe" });
  const out = execFileSync(
    path.join(BIN, "gatehouse-origin"),
    ["client", "create", "--name", "bench-web", "--scope", "read", "--audience", AUD,
      "--grant", "authorization_code", "--grant", "refresh_token", "--redirect-uri", CB],
    { env: originEnv(o) },
  );
  const j = JSON.parse(out.toString().trim());
  const client = { id: j.client_id, secret: j.client_secret };
  const jar = new Map();
  const keep = (r) => {
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const hidden = (html, name) => {
    const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
    if (!m) throw new Error(`login page without ${name}`);
    return m[1].replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  };
  const tokens = [];
  for (let i = 0; i < n; i++) {
    const verifier = randomBytes(32).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const q = new URLSearchParams({
      response_type: "code", client_id: client.id, redirect_uri: CB, scope: "read",
      state: `s${i}`, code_challenge: challenge, code_challenge_method: "S256",
    });
    let r = await fetch(`${o.url}/authorize?${q}`, { headers: { cookie: cookie() }, redirect: "manual" });
    keep(r);
    let code = null;
    for (let step = 0; step < 6 && !code; step++) {
      if (r.status === 303 || r.status === 302) {
        const loc = r.headers.get("location");
        if (loc.startsWith(CB)) {
          code = new URL(loc).searchParams.get("code");
          break;
        }
        r = await fetch(new URL(loc, o.url), { headers: { cookie: cookie() }, redirect: "manual" });
        keep(r);
        continue;
      }
      const html = await r.text();
      if (r.status !== 200) throw new Error(`authorize: ${r.status}`);
      const login = html.includes('name="password"');
      const form = new URLSearchParams({ request: hidden(html, "request"), csrf: hidden(html, "csrf") });
      if (login) {
        form.set("username", "bench");
        form.set("password", env.GATEHOUSE_USER_PASSWORD);
      } else {
        form.set("decision", "approve");
      }
      r = await fetch(`${o.url}/authorize/${login ? "login" : "consent"}`, {
        method: "POST", body: form, redirect: "manual",
        headers: { cookie: cookie(), "content-type": "application/x-www-form-urlencoded" },
      });
      keep(r);
    }
    if (!code) throw new Error("the login flow gave no code");
    const t = await fetch(`${o.url}/token`, {
      method: "POST",
      headers: { authorization: basic(client), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: CB, code_verifier: verifier }),
    });
    const tj = await t.json();
    if (t.status !== 200 || !tj.refresh_token) throw new Error(`code exchange: ${t.status} ${JSON.stringify(tj)}`);
    tokens.push(tj.refresh_token);
  }
  fs.writeFileSync(file, tokens.join("\n") + "\n");
  return client;
}

// ---------- workers under wrangler dev ----------
// The wrangler.toml snapshotted with the build (its bindings match that bundle).
const snapToml = path.join(WORK, "edge-release/wrangler.toml");
const baseToml = fs.readFileSync(fs.existsSync(snapToml) ? snapToml : path.join(ROOT, "wrangler.toml"), "utf8");
const compatDate = /compatibility_date\s*=\s*"([^"]+)"/.exec(baseToml)[1];
const tomlStr = (s) => JSON.stringify(String(s));
function varsToml(vars) {
  return "[vars]\n" + Object.entries(vars).map(([k, v]) => `${k} = ${tomlStr(v)}`).join("\n") + "\n";
}
// Our edge: the repository's wrangler.toml (bindings, migrations) minus [build]
// and [vars], main pointed at a copy of the built bundle, our [vars].
function edgeToml(main, vars) {
  const out = [];
  let skip = false;
  for (const line of baseToml.split("\n")) {
    const sec = /^\s*\[+([^\]]+)\]+/.exec(line);
    if (sec) skip = sec[1].trim() === "build" || sec[1].trim() === "vars";
    if (skip) continue;
    if (/^main\s*=/.test(line)) out.push(`main = ${tomlStr(main)}`);
    else out.push(line);
  }
  return out.join("\n") + "\n" + varsToml(vars);
}
function jsToml(name, main, vars, extra = "") {
  return `name = ${tomlStr(name)}\nmain = ${tomlStr(main)}\ncompatibility_date = ${tomlStr(compatDate)}\n${extra}\n${varsToml(vars)}`;
}
// `state`: the --persist-to directory (default RUN/<name>/state); a worker
// restarted on the same one keeps its KV and Durable Objects.
async function startWorker(name, toml, readyPath, port_, state) {
  const port = port_ || (await freePort());
  const dir = path.join(RUN, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "wrangler.toml"), toml);
  const env = {
    ...process.env,
    CI: "true",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_LOG_PATH: path.join(dir, "wrangler-logs"),
  };
  const t0 = Date.now();
  const child = spawnBg(
    name,
    path.join(ROOT, "node_modules/.bin/wrangler"),
    ["dev", "--local", "--ip", "127.0.0.1", "--show-interactive-dev-session=false",
      "--config", path.join(dir, "wrangler.toml"), "--port", String(port),
      "--inspector-port", String(await freePort()), "--persist-to", state || path.join(dir, "state")],
    { env },
  );
  const w = { name, port, url: `http://127.0.0.1:${port}`, child };
  await waitUp(w.url + readyPath, child, 180000);
  w.startupMs = Date.now() - t0;
  return w;
}

// ---------- the same workers on workerd directly ----------
// wrangler dev runs two workerd processes per worker (its proxy on the dev
// port, then the worker's own behind Miniflare's entry service) and a Node
// process. For the direct view, wrangler is started once more with
// MINIFLARE_WORKERD_PATH pointing at bench/workerd-capture.sh, which records
// the arguments and the binary config Miniflare hands each workerd; wrangler
// is then stopped and the worker's own workerd started from that config on a
// port of ours, with nothing in front of it. Its loopback (Miniflare's Node
// side: pretty error pages, never asked on a 2xx) points at a stub here.
const REAL_WORKERD = createRequire(import.meta.url)("workerd").default;
let loopbackPort;
async function loopback() {
  if (loopbackPort) return loopbackPort;
  const http = await import("node:http");
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(""));
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  srv.unref();
  loopbackPort = srv.address().port;
  return loopbackPort;
}
async function directWorker(name, toml, readyPath) {
  const dir = path.join(RUN, `direct-${name}`);
  const cap = path.join(dir, "capture");
  fs.mkdirSync(cap, { recursive: true });
  fs.writeFileSync(path.join(dir, "wrangler.toml"), toml);
  const env = {
    ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_LOG_PATH: path.join(dir, "wrangler-logs"),
    MINIFLARE_WORKERD_PATH: path.join(ROOT, "bench/workerd-capture.sh"),
    BENCH_CAPTURE_DIR: cap, BENCH_REAL_WORKERD: REAL_WORKERD,
  };
  const port = await freePort();
  const w = spawnBg(`${name}-capture`, path.join(ROOT, "node_modules/.bin/wrangler"),
    ["dev", "--local", "--ip", "127.0.0.1", "--show-interactive-dev-session=false",
      "--config", path.join(dir, "wrangler.toml"), "--port", String(port),
      "--inspector-port", String(await freePort()), "--persist-to", path.join(dir, "state")], { env });
  await waitUp(`http://127.0.0.1:${port}${readyPath}`, w, 180000);
  const exited = new Promise((r) => w.once("exit", r));
  stop(w);
  await Promise.race([exited, sleep(10000)]);
  try {
    process.kill(-w.pid, "SIGKILL");
  } catch {}
  // The worker's own workerd is the one with an inspector (the proxy has none).
  const own = fs.readdirSync(cap).filter((f) => f.endsWith(".args"))
    .find((f) => fs.readFileSync(path.join(cap, f), "utf8").includes("--inspector-addr"));
  if (!own) throw new Error(`no workerd config captured for ${name}`);
  const config = path.join(cap, own.replace(/\.args$/, ".config"));
  const dport = await freePort();
  const profiled = (process.env.BENCH_PROFILE || "").split(",").filter(Boolean);
  const inspectPort = profiled.includes(name) ? Number(process.env.BENCH_INSPECT_PORT || 9229) + profiled.indexOf(name) : null;
  const inspect = inspectPort ? [`--inspector-addr=127.0.0.1:${inspectPort}`] : [];
  const child = spawnBg(`${name}-direct`, REAL_WORKERD,
    ["serve", "--binary", "--experimental", `--socket-addr=entry=127.0.0.1:${dport}`,
      `--external-addr=loopback=127.0.0.1:${await loopback()}`, ...inspect, "-"],
    { stdin: fs.openSync(config, "r") });
  const d = { name, port: dport, url: `http://127.0.0.1:${dport}`, child, direct: true, inspectPort };
  await waitUp(d.url + readyPath, child, 60000);
  return d;
}

// ---------- CPU time per worker ----------
// utime + stime from /proc/<pid>/stat of every process in the worker's
// process group (wrangler dev: its Node, its proxy workerd, the worker's own
// workerd; direct: the one workerd), read before and after each load run.
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
const roleOf = new Map(); // pid -> "worker" | "proxy" | "node"
function groupTicks(w) {
  const out = { worker: 0, proxy: 0, node: 0 };
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let st;
    try {
      st = fs.readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = st.lastIndexOf(")");
    const f = st.slice(close + 2).split(" ");
    if (Number(f[2]) !== w.child.pid) continue;
    let role = roleOf.get(d);
    if (!role) {
      const comm = st.slice(st.indexOf("(") + 1, close);
      let cmd = "";
      try {
        cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8");
      } catch {}
      role = comm !== "workerd" ? "node" : w.direct || cmd.includes("--inspector-addr") ? "worker" : "proxy";
      roleOf.set(d, role);
    }
    out[role] += Number(f[11]) + Number(f[12]);
  }
  return out;
}
// One wrk run against worker `w`, with the CPU each of its processes spent
// per request served (µs).
function measured(w, opts) {
  const a = groupTicks(w);
  const r = wrk(opts);
  const b = groupTicks(w);
  const per = (k) => (((b[k] - a[k]) / CLK_TCK) * 1e6) / Math.max(1, r.requests);
  r.cpu = { worker: per("worker"), proxy: per("proxy"), node: per("node") };
  return r;
}

// ---------- wrk ----------
function wrk({ url, method = "GET", auth, body, ct, proofs, refreshTokens, secs = SECS, conc = CONC }) {
  const env = { ...process.env, BENCH_METHOD: method, BENCH_PATH: new URL(url).pathname };
  for (const k of ["BENCH_AUTH", "BENCH_BODY", "BENCH_CT", "BENCH_PROOFS", "BENCH_REFRESH_TOKENS"]) delete env[k];
  if (auth) env.BENCH_AUTH = auth;
  if (body) env.BENCH_BODY = body;
  if (ct) env.BENCH_CT = ct;
  if (proofs) env.BENCH_PROOFS = proofs;
  if (refreshTokens) env.BENCH_REFRESH_TOKENS = refreshTokens;
  const out = execFileSync(
    "wrk",
    ["-t1", `-c${conc}`, `-d${secs}s`, "--timeout", "10s", "-s", path.join(ROOT, "bench/load/wrk.lua"), url],
    { env, maxBuffer: 1 << 24 },
  ).toString();
  const m = /BENCH_RESULT (\{.*\})/.exec(out);
  if (!m) throw new Error("wrk printed no result:\n" + out);
  return JSON.parse(m[1]);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
}

// ---------- timing one request ----------
async function timed(url, headers) {
  const t0 = performance.now();
  const r = await fetch(url, { headers });
  await r.arrayBuffer();
  return { ms: performance.now() - t0, status: r.status };
}

// ---------- cold path (§5) ----------
// The first request a new isolate serves (right after `wrangler dev` answers
// its readiness probe), against the median of the 30 that follow. `auth(url)`
// gives each request's headers (a new DPoP proof each time).
async function firstVsWarm(w, auth) {
  const url = `${w.url}/orders/1`;
  const first = await timed(url, auth(url));
  const warm = [];
  for (let i = 0; i < 30; i++) warm.push((await timed(url, auth(url))).ms);
  if (first.status !== 200) throw new Error(`${w.name}: first request answered ${first.status}`);
  return { startupMs: w.startupMs, firstMs: first.ms, warmP50Ms: median(warm), load: os.loadavg()[0] };
}
async function stopped(w) {
  const exited = new Promise((r) => w.child.once("exit", r));
  stop(w.child);
  await Promise.race([exited, sleep(10000)]);
  try {
    process.kill(-w.child.pid, "SIGKILL");
  } catch {}
}
// Revokes a fresh token at the origin that pushes to our edge `w` and waits
// until `w` refuses it: the signed revocation document is then in the
// edge's KV and replicas (in `w`'s state directory).
async function revokeOneAndWait(w, es, esClient) {
  const t = await getToken(es, esClient);
  const r = await fetch(`${es.url}/revoke`, {
    method: "POST",
    headers: { authorization: basic(esClient), "content-type": "application/x-www-form-urlencoded" },
    body: `token=${encodeURIComponent(t)}&token_type_hint=access_token`,
  });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`revoke: ${r.status}`);
  const t0 = Date.now();
  while ((await timed(`${w.url}/orders/1`, { authorization: `Bearer ${t}` })).status !== 401) {
    if (Date.now() - t0 > 60000) throw new Error("the revocation document did not reach the edge in 60 s");
    await sleep(200);
  }
}

// Origin issuance on one origin: client_credentials without and with DPoP,
// then refresh with rotation. Each row also carries the origin process's own
// CPU time (utime + stime) per token, which other load on the machine
// disturbs much less than tokens/s.
function procTicks(pid) {
  const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}
function wrkOrigin(o, opts) {
  const a = procTicks(o.child.pid);
  const r = wrk(opts);
  const b = procTicks(o.child.pid);
  return { ...r, origin_cpu_us: (((b - a) / CLK_TCK) * 1e6) / Math.max(1, r.requests) };
}
async function issuance(label, o, client, dpopKey) {
  for (const dpop of [false, true]) {
    if (!ORIGIN_GRANTS.includes(dpop ? "dpop" : "cc")) continue;
    let proofs;
    if (dpop) {
      proofs = path.join(RUN, `proofs-token-${o.name}.txt`);
      const n = Math.min(400000, Math.ceil((results.issuance.at(-1)?.rps || 3000) * ISSUE_SECS * 2) + 2000);
      writeProofs(dpopKey, "POST", `${o.url}/token`, n, proofs);
    }
    const r = wrkOrigin(o, {
      url: `${o.url}/token`, method: "POST", auth: basic(client), body: "grant_type=client_credentials",
      ct: "application/x-www-form-urlencoded", proofs, secs: ISSUE_SECS,
    });
    results.issuance.push({ db: label, grant: dpop ? "client_credentials + DPoP" : "client_credentials", ...r });
    log(`issuance ${label} ${dpop ? "DPoP" : "plain"}: ${r.rps.toFixed(0)}/s p99 ${(r.p99_us / 1000).toFixed(1)} ms, errors ${r.non2xx}`);
  }
  if (!ORIGIN_GRANTS.includes("refresh")) return;
  // Refresh with rotation: CONC chains, each presenting the token the last rotation returned.
  const file = path.join(RUN, `refresh-${o.name}.txt`);
  // One token more than connections: wrk calls request() once before the
  // load to check the script, which takes a token that is never sent.
  const web = await refreshTokens(o, CONC + 1, file);
  const r = wrkOrigin(o, {
    url: `${o.url}/token`, method: "POST", auth: basic(web), ct: "application/x-www-form-urlencoded",
    refreshTokens: file, secs: ISSUE_SECS,
  });
  results.issuance.push({ db: label, grant: "refresh_token (rotation)", ...r });
  log(`refresh ${label}: ${r.rps.toFixed(0)}/s p99 ${(r.p99_us / 1000).toFixed(1)} ms, errors ${r.non2xx}`);
}

async function issuancePg(dpopKey) {
  if (PG_BASE) {
    const dbName = "gatehouse_bench";
    try {
      execFileSync("psql", [`${PG_BASE}/postgres`, "-qc", `DROP DATABASE IF EXISTS ${dbName}`], { stdio: "pipe" });
      execFileSync("psql", [`${PG_BASE}/postgres`, "-qc", `CREATE DATABASE ${dbName}`], { stdio: "pipe" });
      const pg = await startOrigin("origin-pg", { db: `${PG_BASE}/${dbName}` });
      const pgClient = createClient(pg);
      await getToken(pg, pgClient);
      log("issuance on PostgreSQL");
      await issuance("PostgreSQL", pg, pgClient, dpopKey);
      stop(pg.child);
    } catch (e) {
      results.notes.push(`PostgreSQL issuance not measured: ${e.message.split("\n")[0]}`);
      log("PostgreSQL skipped:", e.message.split("\n")[0]);
    }
  }
}

const results = { validation: {}, floors: {}, cold: {}, issuance: [], revocation: null, sizes: {}, notes: [] };
// Wall-clock per section, for the report's notes and the summary at the end
// of scripts/bench: the sections scripts/bench timed before this process
// (builds, revocation paths; BENCH_DURATIONS, one "seconds<TAB>name" a
// line), then this run's own, appended to the same file as they end.
const DURATIONS = process.env.BENCH_DURATIONS;
results.durations = [];
if (DURATIONS && fs.existsSync(DURATIONS))
  for (const l of fs.readFileSync(DURATIONS, "utf8").split("\n").filter(Boolean)) {
    const [secs, ...name] = l.split("\t");
    results.durations.push([name.join("\t"), Number(secs)]);
  }
let sectionStart = Date.now();
function section(name) {
  const secs = (Date.now() - sectionStart) / 1000;
  sectionStart = Date.now();
  results.durations.push([name, secs]);
  if (DURATIONS) fs.appendFileSync(DURATIONS, `${Math.round(secs)}\t${name}\n`);
}
if (process.env.BENCH_BIN)
  results.notes.push(`The origins (token and JWKS source) and the demo upstream ran from \`${path.relative(ROOT, BIN) || BIN}\` (BENCH_BIN), not the release build.`);

async function main() {
  if (ORIGIN_ONLY) {
    const dpopKey = keygen();
    const es = await startOrigin("origin-sqlite");
    const esClient = createClient(es);
    await getToken(es, esClient);
    log("issuance on SQLite");
    await issuance("SQLite", es, esClient, dpopKey);
    stop(es.child);
    section("issuance, SQLite");
    await issuancePg(dpopKey);
    section("issuance, PostgreSQL");
    results.loadEnd = os.loadavg();
    return;
  }
  // Sizes of the two builds scripts/bench made (copied beside the run).
  for (const prof of ["noopt", "release"]) {
    const d = path.join(WORK, `edge-${prof}`);
    const files = ["worker/shim.mjs", "index.js", "index_bg.wasm"].map((f) => path.join(d, f));
    if (!files.every((f) => fs.existsSync(f))) continue;
    const each = files.map((f) => fs.statSync(f).size);
    const all = Buffer.concat(files.map((f) => fs.readFileSync(f)));
    const gz = execFileSync("gzip", ["-9c"], { input: all, maxBuffer: 1 << 26 }).length;
    const wasmGz = execFileSync("gzip", ["-9c"], { input: fs.readFileSync(files[2]), maxBuffer: 1 << 26 }).length;
    results.sizes[prof] = { raw: all.length, gz, wasm: each[2], wasmGz, js: each[0] + each[1] };
  }
  // The jose worker bundled and minified the way wrangler would, for comparison.
  try {
    const outFile = path.join(RUN, "jose-bundle.mjs");
    execFileSync(path.join(ROOT, "node_modules/.bin/esbuild"), [
      path.join(ROOT, "bench/jose-worker/index.mjs"), "--bundle", "--minify", "--format=esm",
      "--platform=neutral", "--log-level=error", `--outfile=${outFile}`,
    ]);
    const b = fs.readFileSync(outFile);
    results.sizes.jose = { raw: b.length, gz: execFileSync("gzip", ["-9c"], { input: b }).length };
  } catch (e) {
    results.notes.push("jose bundle size not measured: " + e.message.split("\n")[0]);
  }

  // Upstream and origins. The SQLite ES256 origin pushes revocations to our edge.
  log("starting upstream and origins");
  const upPort = await freePort();
  const upstream = { url: `http://127.0.0.1:${upPort}` };
  upstream.child = spawnBg("upstream", path.join(BIN, "gatehouse-demo-upstream"), [`127.0.0.1:${upPort}`]);
  await waitUp(`${upstream.url}/ready`, upstream.child, 30000);
  const edgePort = await freePort();
  const es = await startOrigin("origin-es256", { extra: { GATEHOUSE_EDGE_URL: `http://127.0.0.1:${edgePort}` } });
  const ed = await startOrigin("origin-eddsa", { extra: { GATEHOUSE_SIGNING_ALG: "EdDSA" } });
  const esClient = createClient(es);
  const edClient = createClient(ed);
  const dpopKey = keygen();
  const mkProof = proofMaker(dpopKey);
  const tokens = {
    es256: await getToken(es, esClient),
    eddsa: await getToken(ed, edClient),
    dpop: await getToken(es, esClient, mkProof("POST", `${es.url}/token`)),
  };
  for (const [k, t] of Object.entries(tokens)) {
    const alg = JSON.parse(Buffer.from(t.split(".")[0], "base64url")).alg;
    results.notes.push(`token ${k}: alg ${alg}, ${t.length} bytes`);
  }

  section("setup: sizes, upstream, origins, tokens");
  if (COLD_ONLY) return coldOnly({ upstream, es, ed, esClient, tokens, edgePort, mkProof });

  // Workers.
  const jwks = (o) => `${o.url}/.well-known/jwks.json`;
  const release = path.join(WORK, "edge-release/worker/shim.mjs");
  const workers = {};
  log("starting workers (wrangler dev)");
  const edgeVars = {
    ISSUER: es.url,
    AUDIENCE: AUD,
    JWKS_URL: jwks(es),
    UPSTREAM_URL: upstream.url,
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: ed.url, jwks_url: jwks(ed), audiences: [AUD], algorithms: ["EdDSA"] }]),
    RATE_LIMIT_CLIENT: "4000000000/60",
    RATE_LIMIT_IP: "4000000000/60",
    DPOP_MAX_AGE_SECS: "300",
    // Forwarded requests are in the platform's own request logs; our edge
    // logs refusals only here, as the JS workers log nothing (the default,
    // REQUEST_LOG=all, is measured separately below).
    REQUEST_LOG: "refused",
  };
  // [name, wrangler.toml, readiness path, port]
  const specs = [
    // Our edge on the port the origin pushes revocations to.
    ["gatehouse", edgeToml(release, edgeVars), "/.gatehouse/health", edgePort],
    // Our edge as configured out of the box (a log line per request), and
    // with every request asking the rate limiter (no leases): what each costs.
    ["gatehouse_logall", edgeToml(release, { ...edgeVars, REQUEST_LOG: "all" }), "/.gatehouse/health"],
    ["gatehouse_nolease", edgeToml(release, { ...edgeVars, RATE_LIMIT_LEASE_MAX: "1" }), "/.gatehouse/health"],
    ["jose", jsToml("bench-jose", path.join(ROOT, "bench/jose-worker/index.mjs"), {
      ISSUERS: JSON.stringify([{ iss: es.url, jwks_url: jwks(es), algs: ["ES256"] }, { iss: ed.url, jwks_url: jwks(ed), algs: ["EdDSA"] }]),
      AUDIENCE: AUD, UPSTREAM_URL: upstream.url, DPOP_MAX_AGE_SECS: "300",
    }), "/"],
    // jose with the same DPoP replay guard as ours (a Durable Object per jkt):
    // the DPoP row's equal-work comparison.
    ["jose_replay", jsToml("bench-jose-replay", path.join(ROOT, "bench/jose-worker/index.mjs"), {
      ISSUERS: JSON.stringify([{ iss: es.url, jwks_url: jwks(es), algs: ["ES256"] }, { iss: ed.url, jwks_url: jwks(ed), algs: ["EdDSA"] }]),
      AUDIENCE: AUD, UPSTREAM_URL: upstream.url, DPOP_MAX_AGE_SECS: "300",
    }, `[[durable_objects.bindings]]\nname = "REPLAY_GUARD"\nclass_name = "ReplayGuard"\n\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["ReplayGuard"]\n`), "/"],
    ["webcrypto", jsToml("bench-webcrypto", path.join(ROOT, "bench/webcrypto-worker/index.mjs"), {
      JWKS_URLS: JSON.stringify([jwks(es), jwks(ed)]), UPSTREAM_URL: upstream.url,
    }), "/"],
    ["passthrough", jsToml("bench-passthrough", path.join(ROOT, "bench/passthrough-worker/index.mjs"), {
      UPSTREAM_URL: upstream.url,
    }, `[[durable_objects.bindings]]\nname = "HOP"\nclass_name = "Hop"\n\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["Hop"]\n`), "/ready"],
  ];
  for (const [name, toml, ready, port] of specs) {
    const w = await startWorker(name, toml, ready, port);
    workers[name] = w;
    // Cold path: the first authenticated request after the worker is ready
    // (JWKS fetch + key import), then warm requests on the same token.
    if (name !== "passthrough" && name !== "jose_replay") {
      // (Fresh storage: KV empty, every Durable Object created by this request.)
      results.cold[name] = await firstVsWarm(w, () => ({ authorization: `Bearer ${tokens.es256}` }));
    } else {
      results.cold[name] = { startupMs: w.startupMs };
    }
    log(`${name} up on ${w.url} in ${w.startupMs} ms`);
  }

  section(`${specs.length} workers under wrangler dev (fresh-storage first requests)`);

  // Direct view: each worker's own workerd run straight from the config
  // wrangler generates for it (captured, see directWorker), without
  // wrangler's proxy workerd and Node process in front of it.
  const direct = {};
  if (DIRECT) {
    for (const [name, toml, ready] of specs) {
      if (name === "gatehouse_logall" || name === "gatehouse_nolease") continue;
      try {
        direct[name] = await directWorker(name, toml, ready);
        log(`${name} direct on ${direct[name].url}`);
      } catch (e) {
        results.notes.push(`Direct workerd view not measured for ${name}: ${e.message.split("\n")[0]}`);
        log(`direct ${name} failed:`, e.message.split("\n")[0]);
      }
    }
  }

  if (DIRECT) section("direct view: workerd configs captured, workerd started");

  // Sanity: every worker accepts every row once before the load.
  const rows = [
    { key: "es256", label: "ES256 Bearer", auth: () => `Bearer ${tokens.es256}` },
    { key: "dpop", label: "ES256 DPoP", auth: () => `DPoP ${tokens.dpop}`, dpop: true, extra: ["jose_replay"] },
    { key: "eddsa", label: "EdDSA Bearer", auth: () => `Bearer ${tokens.eddsa}` },
  ];
  const impls = ["gatehouse", "jose", "webcrypto"];
  const implsOf = (row) => [...impls, ...(row.extra || [])];
  const views = [{ name: "wrangler", W: workers }];
  if (DIRECT && ["gatehouse", "jose", "jose_replay", "webcrypto", "passthrough"].every((n) => direct[n]))
    views.push({ name: "direct", W: direct });
  for (const v of views)
    for (const row of rows)
      for (const impl of implsOf(row)) {
        const url = `${v.W[impl].url}/orders/1`;
        const h = { authorization: row.auth() };
        if (row.dpop) h.dpop = mkProof("GET", url, tokens.dpop);
        const r = await timed(url, h);
        if (r.status !== 200) throw new Error(`${impl} (${v.name}) refused ${row.label}: ${r.status}`);
      }

  // BENCH_PROFILE=gatehouse,jose: CPU profiles of those direct workers under
  // each row's load (bench/profile.mjs), printed; then stop.
  if (process.env.BENCH_PROFILE) {
    for (const name of process.env.BENCH_PROFILE.split(",").filter(Boolean)) {
      const d = direct[name];
      if (!d || !d.inspectPort) continue;
      for (const row of rows) {
        if (!implsOf(row).includes(name)) continue;
        const url = `${d.url}/orders/1`;
        const secs = Number(process.env.BENCH_PROFILE_SECS || 6);
        let proofs;
        if (row.dpop) {
          proofs = path.join(RUN, `proofs-profile-${name}.txt`);
          writeProofs(dpopKey, "GET", url, 40000, proofs, tokens.dpop);
        }
        const out = path.join(RUN, `profile-${name}-${row.key}.cpuprofile`);
        const prof = spawn("node", [path.join(ROOT, "bench/profile.mjs"), String(d.inspectPort), String(secs - 1), out, "core:user"], { stdio: ["ignore", "pipe", "inherit"] });
        let text = "";
        prof.stdout.on("data", (b) => (text += b));
        await sleep(300);
        const r = measured(d, { url, auth: row.auth(), proofs, secs });
        await new Promise((res) => prof.once("exit", res));
        console.log(`\n=== profile ${name} ${row.label}: ${r.rps.toFixed(0)} req/s, ${r.cpu.worker.toFixed(0)} µs CPU/request, non-2xx ${r.non2xx}\n${text}`);
      }
    }
    return;
  }

  // Configurations; every round runs each one once, in this order, for every view.
  const cfgsOf = (v) => {
    const W = v.W;
    const list = [
      { key: "const", label: "worker answers itself (no upstream)", w: W.passthrough, path: "/const" },
      { key: "pt", label: "pass-through", w: W.passthrough, path: "/orders/1" },
      { key: "pt1", label: "pass-through + 1 DO hop", w: W.passthrough, path: "/hops1/orders/1" },
      { key: "ptlog", label: "pass-through + 1 console.log line", w: W.passthrough, path: "/log/orders/1" },
    ];
    if (W.gatehouse_logall)
      list.push({ key: "ghlog", label: "Gatehouse edge, ES256 Bearer, REQUEST_LOG=all (the default)", w: W.gatehouse_logall, auth: `Bearer ${tokens.es256}` });
    if (W.gatehouse_nolease)
      list.push({ key: "ghnolease", label: "Gatehouse edge, ES256 Bearer, RATE_LIMIT_LEASE_MAX=1 (a rate-limiter round trip per request)", w: W.gatehouse_nolease, auth: `Bearer ${tokens.es256}` });
    for (const row of rows)
      for (const impl of implsOf(row))
        list.push({ key: `${row.key}:${impl}`, label: `${row.label}, ${impl}`, w: W[impl], impl, auth: row.auth(), dpop: row.dpop });
    // Concurrency 1: what a single user feels.
    list.push({ key: "c1:pt", label: "pass-through, concurrency 1", w: W.passthrough, path: "/orders/1", conc: 1, secs: C1_SECS });
    for (const row of rows)
      for (const impl of implsOf(row))
        list.push({ key: `c1:${row.key}:${impl}`, label: `${row.label}, ${impl}, concurrency 1`, w: W[impl], impl, auth: row.auth(), dpop: row.dpop, conc: 1, secs: C1_SECS });
    return list;
  };
  const edge = (results.edge = { views: {}, rows: rows.map(({ key, label, extra }) => ({ key, label, extra: extra || [] })) });
  for (const v of views) edge.views[v.name] = { cfgs: {} };
  const lastRps = {};
  for (let round = 1; round <= ROUNDS; round++) {
    for (const v of views) {
      (results.loadEdge ||= []).push(os.loadavg()[0]);
      log(`edge round ${round}/${ROUNDS}, ${v.name} view (${SECS}s per run at concurrency ${CONC}, ${C1_SECS}s at 1), load ${os.loadavg()[0].toFixed(2)}`);
      for (const c of cfgsOf(v)) {
        const url = `${c.w.url}${c.path || "/orders/1"}`;
        const secs = c.secs || SECS;
        let proofs;
        if (c.dpop) {
          const est = lastRps[`${v.name}:${c.impl}:${c.conc || CONC}`] || (c.conc === 1 ? 500 : 3000);
          const n = Math.min(400000, Math.ceil(est * secs * 2) + 2000);
          proofs = path.join(RUN, `proofs-${v.name}-${c.impl}.txt`);
          writeProofs(dpopKey, "GET", url, n, proofs, tokens.dpop);
        }
        const r = measured(c.w, { url, auth: c.auth, proofs, secs, conc: c.conc || CONC });
        if (!c.dpop && c.impl) {
          const k = `${v.name}:${c.impl}:${c.conc || CONC}`;
          lastRps[k] = Math.max(lastRps[k] || 0, r.rps);
        }
        const slot = (edge.views[v.name].cfgs[c.key] ||= { label: c.label, conc: c.conc || CONC, runs: [] });
        slot.runs.push(r);
      }
    }
  }
  section(`edge rounds (${ROUNDS} × ${views.length} view${views.length > 1 ? "s" : ""}, ${SECS} s at ${CONC}, ${C1_SECS} s at 1)`);
  edge.clkTck = CLK_TCK;
  edge.direct = views.some((v) => v.name === "direct");

  // What our edge's own log says about the refused/failed requests under load.
  try {
    const glog = fs.readFileSync(path.join(RUN, "gatehouse.log"), "utf8");
    const hung = (glog.match(/detected that your Worker's code had hung/g) || []).length;
    const s500 = (glog.match(/GET \/orders\/1 5\d\d/g) || []).length;
    if (hung || s500)
      results.notes.push(
        `**Edge errors under load:** ${s500} requests to our edge answered 5xx during the load runs; workerd logged ${hung}× "The Workers runtime canceled this request because it detected that your Worker's code had hung" — a request awaiting a promise that belongs to another request (e.g. a shared in-flight fetch or a cached promise), which workerd cancels. A bug in the edge to look at (see target/bench/run/gatehouse.log).`,
      );
  } catch {}

  // BENCH_EDGE_ONLY=1: the edge comparison alone (for trying a change;
  // BENCHMARKS.md is left alone unless BENCH_REPORT=1).
  if (EDGE_ONLY) {
    results.loadEnd = os.loadavg();
    results.edgeOnly = true;
    return;
  }

  // Stop the workers we no longer need first (less background noise).
  for (const n of ["passthrough", "gatehouse_logall", "gatehouse_nolease"]) stop(workers[n].child);
  for (const d of Object.values(direct)) stop(d.child);
  await sleep(1000);

  // Cold path with storage present (what a production cold isolate meets):
  // each worker restarted on the state directory it has run on since its
  // first start (our edge: the origin's signed revocation document in KV and
  // the replicas, the caller's rate-limiter and the DPoP key's replay-guard
  // Durable Objects created by the load), BENCH_COLD_ROUNDS (5) times,
  // interleaved: one restart is too noisy to judge the ≤ 2× target on (a
  // single round of jose's first request ranged 3–16 ms on a quiet machine).
  log("cold path, storage present");
  await revokeOneAndWait(workers.gatehouse, es, esClient);
  const specOf = Object.fromEntries(specs.map((s) => [s[0], s.slice(1)]));
  const bearer = () => ({ authorization: `Bearer ${tokens.es256}` });
  const dpopH = (url) => ({ authorization: `DPoP ${tokens.dpop}`, dpop: mkProof("GET", url, tokens.dpop) });
  for (const n of ["gatehouse", "jose", "jose_replay", "webcrypto"]) await stopped(workers[n]);
  results.coldKept = {};
  for (let round = 1; round <= Number(process.env.BENCH_COLD_ROUNDS || 5); round++)
    for (const [key, n, auth] of [["gatehouse", "gatehouse", bearer], ["gatehouse_dpop", "gatehouse", dpopH], ["jose", "jose", bearer],
      ["jose_replay_dpop", "jose_replay", dpopH], ["webcrypto", "webcrypto", bearer]]) {
      const w = await startWorker(n, ...specOf[n]);
      try {
        (results.coldKept[key] ||= []).push(await firstVsWarm(w, auth));
      } finally {
        await stopped(w);
      }
    }
  // Our edge again, for the revocation propagation below.
  workers.gatehouse = await startWorker("gatehouse", ...specOf.gatehouse);
  section("cold restarts, storage present");
  stop(ed.child);
  log("issuance on SQLite");
  await issuance("SQLite", es, esClient, dpopKey);
  section("issuance, SQLite");
  await issuancePg(dpopKey);
  section("issuance, PostgreSQL");

  // Revocation: revoke (RFC 7009) returns → our edge refuses, polled every 5 ms.
  log(`revocation propagation x${REVOCATIONS}`);
  const samples = [];
  const edgeUrl = `${workers.gatehouse.url}/orders/1`;
  for (let i = 0; i < REVOCATIONS; i++) {
    const t = await getToken(es, esClient);
    const h = { authorization: `Bearer ${t}` };
    const before = await timed(edgeUrl, h);
    if (before.status !== 200) throw new Error(`edge refused a fresh token: ${before.status}`);
    const r = await fetch(`${es.url}/revoke`, {
      method: "POST",
      headers: { authorization: basic(esClient), "content-type": "application/x-www-form-urlencoded" },
      body: `token=${encodeURIComponent(t)}&token_type_hint=access_token`,
    });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`revoke: ${r.status}`);
    const t0 = performance.now();
    for (;;) {
      const s = (await timed(edgeUrl, h)).status;
      if (s === 401) break;
      if (s !== 200) throw new Error(`edge answered ${s} while waiting`);
      if (performance.now() - t0 > 10000) throw new Error("revocation did not reach the edge in 10 s");
      await sleep(5);
    }
    samples.push(performance.now() - t0);
  }
  results.revocation = { n: samples.length, p50: pct(samples, 50), p99: pct(samples, 99), max: Math.max(...samples) };
  section("revocation pushed to the edge");
  // bench/revocation-paths.mjs's figures (scripts/bench ran it first and
  // removed an older result), kept with this run's results.
  try {
    results.revocationPaths = JSON.parse(fs.readFileSync(path.join(WORK, "revocation_paths.json"), "utf8"));
    results.revocationPathsMd = fs.readFileSync(path.join(WORK, "revocation_paths.md"), "utf8");
  } catch {
    results.revocationPaths = null;
    results.revocationPathsMd = null;
  }

  const buildNotes = path.join(WORK, "build-notes.txt");
  if (fs.existsSync(buildNotes))
    for (const l of fs.readFileSync(buildNotes, "utf8").split("\n").filter(Boolean)) results.notes.push("**Build:** " + l);
  const sizeOut = path.join(WORK, "revocation_size.txt");
  results.revocationSize = fs.existsSync(sizeOut) ? fs.readFileSync(sizeOut, "utf8") : null;
  results.loadEnd = os.loadavg();
}

// ---------- BENCH_COLD_ONLY=1: the cold path alone ----------
// Every row started BENCH_COLD_ROUNDS times (interleaved), each start a new
// `wrangler dev` and so a new isolate: the first request after readiness
// against the median of the 30 that follow. Two kinds of start:
// - storage present (what a production cold isolate meets): the worker's
//   state directory was warmed once by an earlier `wrangler dev` (our edge:
//   the origin's signed revocation document pushed into KV and the replicas,
//   the caller's rate-limiter and the DPoP key's replay-guard Durable Objects
//   created) and every round restarts on it;
// - fresh storage (the old §5): a new state directory each round, so KV is
//   empty and every Durable Object is created by the first request — which
//   never happens to a production isolate.
async function coldOnly({ upstream, es, ed, esClient, tokens, edgePort, mkProof }) {
  const jwks = (o) => `${o.url}/.well-known/jwks.json`;
  const release = path.join(WORK, "edge-release/worker/shim.mjs");
  const edgeVars = {
    ISSUER: es.url, AUDIENCE: AUD, JWKS_URL: jwks(es), UPSTREAM_URL: upstream.url,
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: ed.url, jwks_url: jwks(ed), audiences: [AUD], algorithms: ["EdDSA"] }]),
    RATE_LIMIT_CLIENT: "4000000000/60", RATE_LIMIT_IP: "4000000000/60", DPOP_MAX_AGE_SECS: "300", REQUEST_LOG: "refused",
  };
  const issuers = JSON.stringify([{ iss: es.url, jwks_url: jwks(es), algs: ["ES256"] }, { iss: ed.url, jwks_url: jwks(ed), algs: ["EdDSA"] }]);
  const joseVars = { ISSUERS: issuers, AUDIENCE: AUD, UPSTREAM_URL: upstream.url, DPOP_MAX_AGE_SECS: "300" };
  const replayToml = `[[durable_objects.bindings]]\nname = "REPLAY_GUARD"\nclass_name = "ReplayGuard"\n\n[[migrations]]\ntag = "v1"\nnew_sqlite_classes = ["ReplayGuard"]\n`;
  const bearer = () => ({ authorization: `Bearer ${tokens.es256}` });
  const dpop = (url) => ({ authorization: `DPoP ${tokens.dpop}`, dpop: mkProof("GET", url, tokens.dpop) });
  const tomls = {
    gatehouse: edgeToml(release, edgeVars),
    jose: jsToml("bench-jose", path.join(ROOT, "bench/jose-worker/index.mjs"), joseVars),
    jose_replay: jsToml("bench-jose-replay", path.join(ROOT, "bench/jose-worker/index.mjs"), joseVars, replayToml),
    webcrypto: jsToml("bench-webcrypto", path.join(ROOT, "bench/webcrypto-worker/index.mjs"), { JWKS_URLS: JSON.stringify([jwks(es), jwks(ed)]), UPSTREAM_URL: upstream.url }),
  };
  // BENCH_COLD_ALT=<an edge build directory> (or `same`) and/or
  // BENCH_COLD_ALT_VARS=<JSON object of [vars]>: our edge's rows for that
  // build or those settings too, interleaved in the same rounds.
  const altVars = JSON.parse(process.env.BENCH_COLD_ALT_VARS || "{}");
  const alt = process.env.BENCH_COLD_ALT || (process.env.BENCH_COLD_ALT_VARS ? "same" : "");
  if (alt) {
    const altMain = alt === "same" ? release : path.join(path.resolve(alt), "worker/shim.mjs");
    tomls.alt = edgeToml(altMain, { ...edgeVars, ...altVars });
  }
  const edgeLike = (n) => n === "gatehouse" || n === "alt";
  // Rows: [key, worker (toml), request, kept state directory or null (fresh)].
  const kept = (n) => path.join(RUN, `${n}-kept`, "state");
  const rows = [
    ["gatehouse", "gatehouse", bearer, kept("gatehouse")],
    ["gatehouse_dpop", "gatehouse", dpop, kept("gatehouse")],
    ["gatehouse_fresh", "gatehouse", bearer, null],
    ["jose", "jose", bearer, kept("jose")],
    ["jose_fresh", "jose", bearer, null],
    ["jose_replay_dpop", "jose_replay", dpop, kept("jose_replay")],
    ["webcrypto", "webcrypto", bearer, kept("webcrypto")],
    ["webcrypto_fresh", "webcrypto", bearer, null],
  ];
  if (alt) rows.push(["alt", "alt", bearer, kept("alt")], ["alt_dpop", "alt", dpop, kept("alt")], ["alt_fresh", "alt", bearer, null]);
  // Warm each kept state directory once: a Bearer and a DPoP request (rate
  // limiter and replay guard objects created), and for our edge a revocation
  // pushed by the origin (edgePort) and seen.
  for (const n of Object.keys(tomls)) {
    const w = await startWorker(`${n}-kept`, tomls[n], edgeLike(n) ? "/.gatehouse/health" : "/", edgeLike(n) ? edgePort : undefined, kept(n));
    for (const h of n === "jose_replay" ? [dpop] : n === "jose" || n === "webcrypto" ? [bearer] : [bearer, dpop]) {
      const url = `${w.url}/orders/1`;
      const r = await timed(url, h(url));
      if (r.status !== 200) throw new Error(`${n}: warm-up request answered ${r.status}`);
    }
    if (edgeLike(n)) await revokeOneAndWait(w, es, esClient);
    await stopped(w);
  }
  const cold = {};
  for (let round = 1; round <= COLD_ROUNDS; round++) {
    log(`cold round ${round}/${COLD_ROUNDS}, load ${os.loadavg()[0].toFixed(2)}`);
    for (const [key, n, auth, state] of rows) {
      const name = state ? `${n}-kept` : `${n}-fresh`;
      if (!state) fs.rmSync(path.join(RUN, name), { recursive: true, force: true });
      const w = await startWorker(name, tomls[n], edgeLike(n) ? "/.gatehouse/health" : "/", edgeLike(n) ? edgePort : undefined, state);
      try {
        (cold[key] ||= []).push(await firstVsWarm(w, auth));
      } finally {
        await stopped(w);
      }
    }
  }
  results.coldRounds = cold;
  const f1 = (x) => x.toFixed(1);
  const L = [];
  L.push(`Cold path (BENCH_COLD_ONLY=1), ${COLD_ROUNDS} rounds, each a new wrangler dev (release build of the edge); median [min–max]; load average (1 min) ${cold.jose.map((c) => c.load.toFixed(2)).join(", ")}`);
  L.push("");
  L.push("| worker | request | storage | first request ms | warm p50 ms | first − warm ms | per round first − warm |");
  L.push("|---|---|---|---:|---:|---:|---|");
  const present = "present (restart on a warmed state directory)";
  const fresh = "fresh (new state directory)";
  const labels = {
    gatehouse: ["Gatehouse edge", "ES256 Bearer", present + ", revocation document in KV and the replicas"],
    gatehouse_dpop: ["Gatehouse edge", "ES256 DPoP", present],
    gatehouse_fresh: ["Gatehouse edge", "ES256 Bearer", fresh + ", no revocation document"],
    jose: ["jose", "ES256 Bearer", present], jose_fresh: ["jose", "ES256 Bearer", fresh],
    jose_replay_dpop: ["jose + replay guard", "ES256 DPoP", present],
    webcrypto: ["bare WebCrypto", "ES256 Bearer", present], webcrypto_fresh: ["bare WebCrypto", "ES256 Bearer", fresh],
    ...(alt ? {
      alt: [`BENCH_COLD_ALT ${alt} ${JSON.stringify(altVars)}`, "ES256 Bearer", present],
      alt_dpop: [`BENCH_COLD_ALT ${alt} ${JSON.stringify(altVars)}`, "ES256 DPoP", present],
      alt_fresh: [`BENCH_COLD_ALT ${alt} ${JSON.stringify(altVars)}`, "ES256 Bearer", fresh],
    } : {}),
  };
  const mm = (xs) => `${f1(median(xs))} [${f1(Math.min(...xs))}–${f1(Math.max(...xs))}]`;
  for (const [k, [who, what, storage]] of Object.entries(labels)) {
    const c = cold[k];
    const d = c.map((x) => x.firstMs - x.warmP50Ms);
    L.push(`| ${who} | ${what} | ${storage} | ${mm(c.map((x) => x.firstMs))} | ${mm(c.map((x) => x.warmP50Ms))} | ${mm(d)} | ${d.map(f1).join(", ")} |`);
  }
  const ratio = (k, j) => {
    const xs = cold[k].map((x, i) => (x.firstMs - x.warmP50Ms) / (cold[j][i].firstMs - cold[j][i].warmP50Ms));
    return `${median(xs).toFixed(2)} (${xs.map((x) => x.toFixed(2)).join(", ")})`;
  };
  L.push("");
  L.push(`first − warm, ours / jose, median (per round): storage present ${ratio("gatehouse", "jose")}; fresh storage ${ratio("gatehouse_fresh", "jose_fresh")}; DPoP, ours / jose + replay guard, storage present ${ratio("gatehouse_dpop", "jose_replay_dpop")}. Target (issue 21.5): ≤ 2.`);
  if (alt) L.push(`BENCH_COLD_ALT (${alt}) / jose: storage present ${ratio("alt", "jose")}; fresh ${ratio("alt_fresh", "jose_fresh")}; DPoP / jose + replay guard ${ratio("alt_dpop", "jose_replay_dpop")}`);
  results.coldTable = L.join("\n");
}

import { report, targetsOf, headline, writeHeadline } from "./report.mjs";
import { verdict } from "./targets.mjs";
try {
  await main();
  if (COLD_ONLY) {
    fs.writeFileSync(path.join(WORK, "results-cold.json"), JSON.stringify(results, null, 2));
    console.log(results.coldTable);
    await cleanup();
    process.exit(0);
  }
  results.started = started.toISOString();
  results.loadStart = loadStart;
  results.config = { SECS, ROUNDS, CONC, ISSUE_SECS, C1_SECS };
  if (ORIGIN_ONLY) {
    fs.writeFileSync(path.join(WORK, "results-origin.json"), JSON.stringify(results, null, 2));
    const t = [`load average ${loadStart.map((x) => x.toFixed(2)).join(" ")} → ${results.loadEnd.map((x) => x.toFixed(2)).join(" ")}; binary ${BIN}`, "",
      "| store | grant | tokens/s | p50 ms | p99 ms | origin CPU µs/token | non-2xx/errors |", "|---|---|---:|---:|---:|---:|---:|"];
    for (const x of results.issuance)
      t.push(`| ${x.db} | ${x.grant} | ${x.rps.toFixed(0)} | ${(x.p50_us / 1000).toFixed(2)} | ${(x.p99_us / 1000).toFixed(2)} | ${x.origin_cpu_us.toFixed(0)} | ${x.non2xx + x.connect_err + x.read_err + x.timeout} |`);
    // Issue 21's origin targets, judged on this run's rows (bench/targets.mjs).
    t.push("");
    for (const x of targetsOf(results, ROOT).filter((x) => ["ccSqlite", "ccPostgres", "dpopSqlite", "refreshSqlite"].includes(x.id) && x.ok != null))
      t.push(`${x.label}: ${verdict(x.ok, x.figure, x.target).replaceAll("**", "")}`);
    console.log(t.join("\n"));
    await cleanup();
    process.exit(0);
  }
  // From the start of scripts/bench (builds included) to this report.
  results.totalS = process.env.BENCH_T0 ? Date.now() / 1000 - Number(process.env.BENCH_T0) : null;
  results.buildsSkipped = process.env.BENCH_SKIP_BUILD === "1";
  results.full = !EDGE_ONLY; // (origin- and cold-only runs ended above)
  const saved = path.join(WORK, EDGE_ONLY ? "results-edge.json" : "results.json");
  fs.writeFileSync(saved, JSON.stringify(results, null, 2));
  const md = report(results, ROOT);
  if (!EDGE_ONLY || process.env.BENCH_REPORT === "1") fs.writeFileSync(path.join(ROOT, "BENCHMARKS.md"), md);
  console.log(md);
  // A full run also rewrites the README's headline block (never a partial run).
  if (!EDGE_ONLY) {
    if (writeHeadline(ROOT, headline(results, ROOT))) log("README.md: headline block rewritten from this run");
    else log("README.md has no bench:headline markers; its headline is left alone");
  }
  log(`results saved in ${saved} (BENCH_RESULT=${path.relative(ROOT, saved)} scripts/bench renders them again)`);
  await cleanup();
  process.exit(0);
} catch (e) {
  console.error("[bench] failed:", e.stack || e);
  fs.writeFileSync(path.join(WORK, "results.partial.json"), JSON.stringify(results, null, 2));
  await cleanup();
  process.exit(1);
}
