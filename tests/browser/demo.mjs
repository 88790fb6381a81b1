// Drives the browser demo (demo/) in Debian's headless Chromium through
// playwright-core: opens the page, signs in on the origin's own login and
// consent pages (scope `read openid profile`, a nonce), returns with a code,
// gets a DPoP-bound token and an id_token, checks the id_token claims and the
// userinfo answer the page shows, calls the edge twice (a fresh proof each
// time) and checks the identity the upstream received. Then signs out through
// the origin's end_session_endpoint, checks the page shows the signed-out
// state, and that the edge now refuses the old access token (with a valid
// proof of the page's key). Saves a screenshot. Run by the e2e test `demo`
// (tests/tests/e2e/demo.rs).
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
/** How long the edge may keep accepting a signed-out session's token, ms. */
const REVOCATION_LIMIT = 2_000;

/** The payload of a compact JWS, unverified (the page verifies; we compare). */
function payload(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

/**
 * Calls the edge from inside the page's origin with `token` and a fresh DPoP
 * proof of the page's own key (the gatehouse-browser module, loaded again in
 * the page, finds the key in IndexedDB): what the page itself would send.
 */
async function callEdgeWith(page, token) {
  return page.evaluate(async (accessToken) => {
    const config = await (await fetch("/config.json")).json();
    const wasm = await import("/pkg/gatehouse_browser.js");
    await wasm.default();
    const client = await wasm.DpopClient.load_or_create("gatehouse-demo");
    const res = await client.fetch(new URL("/hello", config.edge).toString(), "GET", accessToken);
    return { status: res.status, challenge: res.headers.get("WWW-Authenticate") ?? "" };
  }, token);
}

/** Waits for the page's error and returns its text. */
async function errorShown(page) {
  await page.locator("#error").waitFor();
  return (await page.locator("#error").textContent()).trim();
}

/** Logs in on the origin's login page and allows on its consent page. */
async function loginAndAllow(page) {
  await page.getByLabel("Username").fill(env("DEMO_USER"));
  await page.getByLabel("Password").fill(env("DEMO_PASSWORD"));
  await page.getByRole("button", { name: "Sign in" }).click();
  // The consent page, unless this user already allowed this client and scope.
  const allow = page.getByRole("button", { name: "Allow" });
  const back = page.waitForURL((u) => u.origin === pageOrigin);
  const consent = await Promise.race([allow.waitFor().then(() => true), back.then(() => false)]);
  if (consent) await allow.click();
  return consent;
}

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
  // The token response, read off the wire (the page keeps it in memory only).
  const tokenResponse = page.waitForResponse(
    (r) => r.url() === `${expected.issuer}/token` && r.request().method() === "POST" && r.status() === 200,
  );
  await signIn.click();
  await page.waitForURL((u) => u.pathname === "/authorize" && u.origin !== pageOrigin);
  const authorize = new URL(page.url());
  assert.equal(authorize.searchParams.get("dpop_jkt"), jkt, "the code is bound to the page's key");
  assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
  assert.deepEqual(
    authorize.searchParams.get("scope").split(" ").sort(),
    ["openid", "profile", "read"],
    "the page asks for OpenID Connect",
  );
  const nonce = authorize.searchParams.get("nonce");
  assert.match(nonce ?? "", /^[A-Za-z0-9_-]{22,}$/, "the page sends a random nonce");
  const consent = await loginAndAllow(page);
  console.log(`demo: consent ${consent ? "shown and given" : "remembered"}`);

  // 3. Back on the page: the code was redeemed for a DPoP-bound token.
  await page.waitForURL((u) => u.origin === pageOrigin);
  await shown(page, "#token");
  assert.equal(new URL(page.url()).search, "", "the code is removed from the address bar");
  assert.equal(await page.locator("#token-type").textContent(), "DPoP");
  assert.equal(await page.locator("#token-jkt").textContent(), jkt, "cnf.jkt is the page's key");
  const tokens = await (await tokenResponse).json();
  assert.ok(tokens.id_token, "the token response carries an id_token");

  // 3a. The id_token's claims the page verified and shows, and userinfo.
  await shown(page, "#userinfo dd");
  const claim = async (dl, name) => (await page.locator(`#${dl} dd[data-claim="${name}"]`).textContent()).trim();
  assert.match(await page.locator("#id-token-verdict").textContent(), /id_token verified .*nonce matched/);
  assert.equal(await claim("id-claims", "sub"), expected.sub, "the id_token's sub is the user");
  assert.equal(await claim("id-claims", "nonce"), nonce, "the id_token's nonce is the one sent");
  assert.equal(await claim("id-claims", "iss"), expected.issuer);
  assert.equal(await claim("id-claims", "aud"), expected.clientId);
  const idClaims = payload(tokens.id_token);
  assert.equal(idClaims.nonce, nonce, "the id_token on the wire carries the nonce");
  assert.equal(await claim("id-claims", "sid"), idClaims.sid, "the page shows the token it got");
  assert.equal(await claim("userinfo", "sub"), expected.sub, "userinfo names the user");
  assert.equal(await claim("userinfo", "preferred_username"), env("DEMO_USER"));
  console.log("demo: id_token claims and userinfo shown");

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
  assert.deepEqual((await text("id-scope")).split(" ").sort(), ["openid", "profile", "read"]);
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

  // 5. Sign out: the end_session_endpoint with the id_token as hint, then
  //    straight back (the hint proves the session) with the page's state.
  const before = await callEdgeWith(page, tokens.access_token);
  assert.equal(before.status, 200, `the token works from outside the page's module: ${before.challenge}`);
  const endSession = page.waitForRequest((r) => new URL(r.url()).pathname === "/logout");
  await page.getByRole("button", { name: "Sign out" }).click();
  const logout = new URL((await endSession).url());
  assert.equal(logout.origin, expected.issuer, "the origin's end_session_endpoint");
  assert.equal(logout.searchParams.get("id_token_hint"), tokens.id_token);
  assert.equal(logout.searchParams.get("client_id"), expected.clientId);
  assert.equal(logout.searchParams.get("post_logout_redirect_uri"), url);
  assert.match(logout.searchParams.get("state") ?? "", /^[A-Za-z0-9_-]{22}$/);
  await page.waitForURL((u) => u.origin === pageOrigin);
  await shown(page, "#signed-out");
  assert.equal(new URL(page.url()).search, "", "the state is removed from the address bar");
  assert.match(await page.locator("#status").textContent(), /Signed out at the origin \(state verified\)/);
  assert.equal(await page.locator("#sign-out").isDisabled(), true);
  assert.equal(await page.locator("#token").isHidden(), true, "no token is shown after sign-out");

  // 6. The edge refuses the old access token within REVOCATION_LIMIT.
  const start = Date.now();
  let after;
  for (;;) {
    after = await callEdgeWith(page, tokens.access_token);
    if (after.status !== 200 || Date.now() - start > REVOCATION_LIMIT) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(after.status, 401, `the edge still accepts the signed-out session's token after ${Date.now() - start} ms`);
  assert.match(after.challenge, /invalid_token/);
  console.log(`demo: signed out; the edge refused the old token after ${Date.now() - start} ms`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-signed-out.png"), fullPage: true });

  // 7. A sign-out "return" this page did not start (a forged link) is refused.
  await page.goto(`${url}?state=forged-by-another-site`);
  assert.match(await errorShown(page), /Sign-out failed: the state does not match/);
  assert.equal(await page.locator("#signed-out").isHidden(), true);

  // 8. An id_token issued for another nonce (an attacker's authorization
  //    request, or a replayed response) is refused, and nothing of that
  //    token response is used: the nonce is swapped on its way to the origin.
  await page.goto(url);
  await signIn.and(page.locator(":enabled")).waitFor();
  await page.route(
    (u) => u.origin === expected.issuer && u.pathname === "/authorize" && u.searchParams.has("nonce"),
    (route) => {
      const swapped = new URL(route.request().url());
      swapped.searchParams.set("nonce", "chosen-by-the-attacker-0123456789");
      return route.continue({ url: swapped.toString() });
    },
  );
  await signIn.click();
  await page.waitForURL((u) => u.pathname === "/authorize" && u.origin !== pageOrigin);
  await loginAndAllow(page);
  await page.waitForURL((u) => u.origin === pageOrigin);
  assert.match(await errorShown(page), /Sign-in failed: the id_token is refused: nonce is not the one this page sent/);
  assert.equal(await page.locator("#token").isHidden(), true, "no token is shown");
  assert.equal(await page.locator("#id-token").isHidden(), true, "no claims are shown");
  assert.equal(await page.locator("#call-edge").isDisabled(), true);
  console.log("demo: a forged sign-out return and an id_token for another nonce were refused");
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
