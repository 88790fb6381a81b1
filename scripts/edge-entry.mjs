// Run by scripts/build-edge after worker-build (which bundles with
// NO_MINIFY=1 so its shim's names survive): replaces worker-build's default
// export — a `WorkerEntrypoint` class behind a `Proxy` whose traps build a
// new instance, a new instance proxy and a new function proxy on every
// request (~11 % of the isolate's CPU samples under load, BENCHMARKS.md) —
// with a plain module handler object, keeping worker-build's panic recovery:
// `checkReinitialize()` before each request (a new wasm instance after a
// critical error) and `handleMaybeCritical(e)` on a synchronous throw (the
// shim's global `error` listener still sees asynchronous traps). The
// request runs through the shim's own `Entrypoint.prototype.fetch`
// (`exports.fetch(request, this.env, this.ctx)`), with `this` = { env, ctx }.
// Durable Object classes keep their wrappers. Then minifies the bundle.
// Fails (and so does the build) if the shim is not the one expected.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const [buildDir, esbuild] = process.argv.slice(2);
if (!buildDir || !esbuild) {
  console.error("usage: edge-entry.mjs EDGE_BUILD_DIR ESBUILD");
  process.exit(2);
}
const file = path.join(buildDir, "index.js");
let src = fs.readFileSync(file, "utf8");
const needed = [
  /\bvar Entrypoint = class extends WorkerEntrypoint\b/,
  /\bfunction checkReinitialize\(\)/,
  /\bfunction handleMaybeCritical\(e\)/,
  /\bEntrypoint\.prototype\.fetch = function \w+\(arg\) \{/,
];
for (const re of needed)
  if (!re.test(src)) {
    console.error(`edge-entry: worker-build's shim changed (no ${re}); update scripts/edge-entry.mjs`);
    process.exit(1);
  }
const proxied = /\bvar (\w+) = new Proxy\(Entrypoint, classProxyHooks\);/g;
const m = [...src.matchAll(proxied)];
if (m.length !== 1) {
  console.error(`edge-entry: expected one default entrypoint proxy, found ${m.length}`);
  process.exit(1);
}
const handler = `var ${m[0][1]} = {
  fetch(request, env, ctx) {
    checkReinitialize();
    try {
      return Entrypoint.prototype.fetch.call({ env, ctx }, request);
    } catch (e) {
      handleMaybeCritical(e);
      throw e;
    }
  }
};`;
src = src.replace(m[0][0], handler);
const tmp = path.join(buildDir, "index.unminified.js");
fs.writeFileSync(tmp, src);
// Transform only (no bundling): imports stay as they are.
execFileSync(esbuild, [tmp, "--minify", "--format=esm", `--outfile=${file}`, "--allow-overwrite", "--log-level=warning"], {
  stdio: "inherit",
});
fs.rmSync(tmp);
console.error("edge-entry: module handler object as the default export (worker-build's per-request entrypoint proxies removed)");
