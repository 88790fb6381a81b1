// Drives the browser demo (demo/) in Debian's headless Chromium through
// playwright-core: opens the page, signs in on the origin's own login and
// consent pages, returns with a code, gets a DPoP-bound token, calls the edge
// twice (a fresh proof each time) and checks the identity the upstream
// received. Saves a screenshot. Run by the e2e test `demo` (tests/tests/e2e/demo.rs).
//
// Environment:
//   DEMO_URL         the page, e.g. http://127.0.0.1:8070/
//   DEMO_USER        username to sign in as
//   DEMO_PASSWORD    its password
//   DEMO_SUB         the user's id (expected Gatehouse-Sub)
//   DEMO_CLIENT_ID   the page's public client (expected Gatehouse-Client-Id)
//   DEMO_ISSUER      the origin's issuer (expected Gatehouse-Issuer)
//   DEMO_SCREENSHOT  where to save the PNG
//   DEMO_EDGE_NONCE  `required` when the edge runs with DPOP_NONCE=required
//                    (then the page must have followed its nonce challenge)
//   CHROMIUM         browser binary (default /usr/bin/chromium)

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const url = env("DEMO_URL");
const screenshot = env("DEMO_SCREENSHOT");
const expected = {
  sub: env("DEMO_SUB"),
  clientId: env("DEMO_CLIENT_ID"),
  issuer: env("DEMO_ISSUER"),
};
const pageOrigin = new URL(url).origin;
const TIMEOUT = 30_000;

/** Waits for `selector` to show, failing at once with the page's error if that shows first. */
async function shown(page, selector) {
  await page.locator(`${selector}, #error`).locator("visible=true").first().waitFor();
  if (await page.locator("#error").isVisible()) {
    throw new Error(`the page shows an error: ${await page.locator("#error").textContent()}`);
  }
}

const profile = mkdtempSync(join(tmpdir(), "gatehouse-demo-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  viewport: { width: 1100, height: 1250 },
});
const log = [];
let page;
try {
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => log.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));

  // 1. The demo page: the key is created in IndexedDB and its thumbprint shown.
  await page.goto(url);
  const signIn = page.getByRole("button", { name: "Sign in" });
  await signIn.and(page.locator(":enabled")).waitFor();
  const jkt = (await page.locator("#jkt").textContent()).trim();
  assert.match(jkt, /^[A-Za-z0-9_-]{43}$/, "the page shows its key's RFC 7638 thumbprint");

  // 2. The origin's login page (another origin), then its consent page.
  await signIn.click();
  await page.waitForURL((u) => u.pathname === "/authorize" && u.origin !== pageOrigin);
  const authorize = new URL(page.url());
  assert.equal(authorize.searchParams.get("dpop_jkt"), jkt, "the code is bound to the page's key");
  assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
  await page.getByLabel("Username").fill(env("DEMO_USER"));
  await page.getByLabel("Password").fill(env("DEMO_PASSWORD"));
  await page.getByRole("button", { name: "Sign in" }).click();
  // The consent page, unless this user already allowed this client and scope.
  const allow = page.getByRole("button", { name: "Allow" });
  const back = page.waitForURL((u) => u.origin === pageOrigin);
  const consent = await Promise.race([allow.waitFor().then(() => true), back.then(() => false)]);
  if (consent) await allow.click();
  console.log(`demo: consent ${consent ? "shown and given" : "remembered"}`);

  // 3. Back on the page: the code was redeemed for a DPoP-bound token.
  await page.waitForURL((u) => u.origin === pageOrigin);
  await shown(page, "#token");
  assert.equal(new URL(page.url()).search, "", "the code is removed from the address bar");
  assert.equal(await page.locator("#token-type").textContent(), "DPoP");
  assert.equal(await page.locator("#token-jkt").textContent(), jkt, "cnf.jkt is the page's key");

  // 4. Call the edge twice: each call needs a fresh proof (the edge refuses replays).
  const call = page.getByRole("button", { name: "Call the edge" });
  for (const n of [1, 2]) {
    await call.click();
    await shown(page, `#status:has-text("Call ${n} verified.")`);
  }
  const text = async (id) => (await page.locator(`#${id}`).textContent()).trim();
  assert.equal(await text("id-sub"), expected.sub, "Gatehouse-Sub is the signed-in user");
  assert.equal(await text("id-client-id"), expected.clientId, "Gatehouse-Client-Id is the page's client");
  assert.equal(await text("id-jkt"), jkt, "Gatehouse-Jkt is the page's key");
  assert.equal(await text("id-issuer"), expected.issuer);
  assert.equal(await text("id-scope"), "read");
  assert.match(await text("verdict"), /Verified by the edge \(HTTP 200\)/);
  const details = await text("details");
  assert.match(details, /credentials forwarded upstream: no/);
  if (process.env.DEMO_EDGE_NONCE === "required") {
    assert.match(details, /DPoP-Nonce from the edge: received and used/);
  }
  assert.equal(await page.locator("#error").isHidden(), true, "no error is shown");

  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`demo: verified identity shown; screenshot ${screenshot}`);
} catch (e) {
  console.error(`demo: ${e.stack ?? e}`);
  if (page) {
    console.error(`demo: page at ${page.url()}:\n${await page.locator("body").innerText().catch(() => "?")}`);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-failure.png"), fullPage: true }).catch(() => {});
  }
  console.error(log.join("\n"));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
