// Issue 21's performance targets, in one place: every verdict of
// BENCHMARKS.md (bench/report.mjs, bench/report-edge.mjs), of the README's
// headline block and of an origin-only run (bench/run.mjs) is judged
// against these numbers, so a target changes here and nowhere else.
export const TARGETS = {
  // Edge CPU per request (the worker's own workerd), ours / jose for ES256
  // and EdDSA Bearer, ours / (jose + the same replay guard) for ES256 DPoP.
  cpuVsJose: 1.0,
  // Ours minus the Durable Object hops it makes (priced on the
  // pass-through worker) / bare WebCrypto.
  cpuVsWebcrypto: 1.15,
  // Ours: ES256 DPoP p50 / ES256 Bearer p50, at concurrency 1.
  dpopC1: 1.2,
  // Origin issuance (tokens/s; p99 in ms).
  ccSqlite: 10000,
  ccSqliteP99Ms: 20,
  ccPostgres: 5000,
  dpopSqlite: 5000,
  refreshSqlite: 4000,
  // Cold isolate (storage present): first request − warm p50, ours / jose.
  coldVsJose: 2,
  // The fast revocation path reaches the edge within N + this many seconds
  // (N = REVOCATION_REFRESH_SECS of the measured edge).
  revocationSlackS: 1,
  // Issue 9's size limit, still held: the release bundle, gzip -9.
  workerGzipBytes: 1024 * 1024,
};

// A verdict with the figure it was judged on, e.g.
// "**missed** (1.41×; target ≤ 1×)" or "**met** (2,012 ms ≤ 3,000 ms)".
// `ok` null: not measured in this run.
export function verdict(ok, figure, target) {
  if (ok == null) return "not measured";
  return ok ? `**met** (${figure}; target ${target})` : `**missed** (${figure}; target ${target})`;
}
