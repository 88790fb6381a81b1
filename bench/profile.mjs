// CPU profile of one workerd (started with --inspector-addr) over the
// Chrome DevTools protocol, while something else drives load at it:
//   node bench/profile.mjs INSPECTOR_PORT SECONDS OUT.cpuprofile [TARGET]
// Prints the functions with the most self time (and the total by category:
// wasm, the worker's JS glue, runtime built-ins, idle/GC) and writes the
// profile for Chrome DevTools. bench/run.mjs starts a direct workerd with an
// inspector when BENCH_INSPECT_DIRECT=<worker name> (port BENCH_INSPECT_PORT).
import WebSocket from "ws";
import * as fs from "node:fs";

const [port, secs, out, want] = process.argv.slice(2);
if (!port || !secs || !out) {
  console.error("usage: profile.mjs INSPECTOR_PORT SECONDS OUT.cpuprofile [TARGET substring]");
  process.exit(2);
}
const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const target = list.find((t) => !want || (t.title || t.url || "").includes(want) || (t.webSocketDebuggerUrl || "").includes(want)) || list[0];
if (!target) throw new Error("no inspector target");
console.error("profiling", target.title || target.url, target.webSocketDebuggerUrl);
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
let id = 0;
const pending = new Map();
ws.on("message", (m) => {
  const msg = JSON.parse(m.toString());
  if (msg.id && pending.has(msg.id)) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
});
const call = (method, params = {}) =>
  new Promise((r) => {
    const i = ++id;
    pending.set(i, r);
    ws.send(JSON.stringify({ id: i, method, params }));
  });
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 100 });
await call("Profiler.start");
await new Promise((r) => setTimeout(r, Number(secs) * 1000));
const res = await call("Profiler.stop");
ws.close();
const prof = res.result.profile;
fs.writeFileSync(out, JSON.stringify(prof));
// Self time per node from the samples.
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] || 0;
  self.set(prof.samples[i], (self.get(prof.samples[i]) || 0) + dt);
}
const agg = new Map();
let total = 0;
for (const [nid, t] of self) {
  const n = byId.get(nid);
  const cf = n.callFrame;
  const file = (cf.url || "").split("/").pop();
  const key = `${cf.functionName || "(anonymous)"} ${file}${cf.lineNumber >= 0 && file ? ":" + (cf.lineNumber + 1) : ""}`;
  agg.set(key, (agg.get(key) || 0) + t);
  total += t;
}
const cat = new Map();
for (const [k, t] of agg) {
  const c = /^\((idle|program|garbage collector)\)/.test(k)
    ? k.split(" ")[0]
    : /wasm|\$func|\.wasm/.test(k)
      ? "wasm"
      : /index\.js|shim\.mjs/.test(k)
        ? "worker JS glue (index.js, shim.mjs)"
        : / \S+\.m?js/.test(k)
          ? "other JS"
          : "runtime built-ins (no script)";
  cat.set(c, (cat.get(c) || 0) + t);
}
console.log(`total ${(total / 1000).toFixed(0)} ms sampled`);
for (const [c, t] of [...cat].sort((a, b) => b[1] - a[1])) console.log(`  ${((100 * t) / total).toFixed(1)} %  ${c}`);
console.log("top self time:");
for (const [k, t] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log(`  ${((100 * t) / total).toFixed(2)} %  ${k}`);
