// Gatehouse browser demo: authorization code + PKCE (S256) with the code
// bound to this browser's DPoP key (RFC 9449 §10 `dpop_jkt`), a DPoP-bound
// access token, and calls to the edge with a fresh proof each time. The
// DPoP key, proofs and DPoP-Nonce retries come from gatehouse-browser (Wasm).
//
// Tokens are kept in memory only; sessionStorage holds nothing but the PKCE
// verifier and `state` across the redirect, and they are removed on return.
// Nothing is ever written into the page with innerHTML.

import init, { DpopClient } from "./pkg/gatehouse_browser.js";

const APP_ID = "gatehouse-demo";
const PENDING = "gatehouse-demo-pending";
const SCOPE = "read";

const $ = (id) => document.getElementById(id);

/** The token response, in memory only. */
let session = null;
let calls = 0;

function status(text) {
  $("status").textContent = text;
}

function fail(step, err) {
  const e = $("error");
  let message = err instanceof Error ? err.message : String(err);
  if (message === "fetch failed") {
    // The browser hides why; these are the usual causes.
    message += " (server unreachable, or its CORS settings do not allow this page's origin)";
  }
  e.textContent = `${step} failed: ${message}`;
  e.hidden = false;
  status(`${step} failed.`);
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function base64url(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(byteLength) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteLength)));
}

/** RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
async function s256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of our own access token, for display (the edge verifies it, not us). */
function claimsOf(jwt) {
  const part = jwt.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json);
}

/** An OAuth error body (RFC 6749 §5.2 / RFC 6750 §3) as one line, or the status. */
async function describe(res) {
  let text = `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body.error) text += `: ${body.error}`;
    if (body.error_description) text += ` (${body.error_description})`;
  } catch {
    // not JSON: the status says enough
  }
  const challenge = res.headers.get("WWW-Authenticate");
  if (challenge) text += `\nWWW-Authenticate: ${challenge}`;
  return text;
}

/** Step 1: to the origin's /authorize, code bound to our key. */
async function signIn(config, client) {
  const verifier = randomString(32); // 43 characters, 256 bits
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const url = new URL("/authorize", config.origin);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: SCOPE,
    state,
    code_challenge: await s256(verifier),
    code_challenge_method: "S256",
    dpop_jkt: client.jkt(),
  }).toString();
  status("Redirecting to the origin to sign in…");
  location.assign(url.toString());
}

/** Step 2: back from the origin; check state and iss, redeem the code with a DPoP proof. */
async function finishSignIn(config, client, params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null");
  sessionStorage.removeItem(PENDING);
  if (params.has("error")) {
    throw new Error(`${params.get("error")}: ${params.get("error_description") ?? ""}`);
  }
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("the state does not match the one this page sent (start again)");
  }
  // RFC 9207: the response must come from the issuer we sent the user to.
  if (params.get("iss") !== config.origin) {
    throw new Error("the response's iss is not the expected issuer");
  }
  status("Exchanging the code for a DPoP-bound token…");
  const res = await client.fetch(
    new URL("/token", config.origin).toString(),
    "POST",
    undefined,
    new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code") ?? "",
      redirect_uri: config.redirect_uri,
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }).toString(),
    { "Content-Type": "application/x-www-form-urlencoded" },
  );
  if (!res.ok) throw new Error(await describe(res));
  const body = await res.json();
  if (body.token_type !== "DPoP") {
    throw new Error(`expected a DPoP-bound token, got token_type ${body.token_type}`);
  }
  session = body;
  const claims = claimsOf(body.access_token);
  $("token-type").textContent = body.token_type;
  $("token-scope").textContent = body.scope ?? "";
  $("token-expires").textContent = `${body.expires_in} s`;
  $("token-jkt").textContent = claims.cnf?.jkt ?? "(none)";
  $("token").hidden = false;
  $("call-edge").disabled = false;
  $("sign-in").textContent = "Sign in again";
  status(`Signed in as ${claims.sub}. The token is bound to this browser's key.`);
}

/** Step 3: the edge with `Authorization: DPoP` and a fresh proof (ath; nonce retry in the client). */
async function callEdge(config, client) {
  if (!session) throw new Error("sign in first");
  const url = new URL("/hello", config.edge).toString();
  status("Calling the edge…");
  const res = await client.fetch(url, "GET", session.access_token);
  calls += 1;
  if (!res.ok) throw new Error(await describe(res));
  const echo = await res.json();
  const id = echo.identity ?? {};
  const field = (name) => id[`gatehouse-${name}`] ?? "(missing)";
  for (const name of ["sub", "client-id", "scope", "jkt", "issuer", "token-id"]) {
    $(`id-${name}`).textContent = field(name);
  }
  const bound = id["gatehouse-jkt"] === client.jkt();
  const verdict = $("verdict");
  verdict.textContent = bound
    ? `✔ Verified by the edge (HTTP ${res.status}), DPoP-bound to this browser's key.`
    : `✘ The edge forwarded a jkt that is not this browser's key.`;
  verdict.className = bound ? "ok" : "bad";
  $("details").textContent =
    `Call ${calls}: ${echo.method} ${echo.path}; credentials forwarded upstream: ` +
    `${echo.received_authorization || echo.received_dpop ? "yes" : "no (stripped by the edge)"}; ` +
    `DPoP-Nonce from the edge: ${client.nonce_for(url) ? "received and used" : "none"}.`;
  $("result").hidden = false;
  status(`Call ${calls} verified.`);
}

async function main() {
  const res = await fetch("/config.json");
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  const config = await res.json();
  await init();
  const client = await DpopClient.load_or_create(APP_ID);
  $("jkt").textContent = client.jkt();

  const signInButton = $("sign-in");
  const callButton = $("call-edge");
  signInButton.addEventListener("click", () => {
    clearError();
    signIn(config, client).catch((e) => fail("Sign-in", e));
  });
  callButton.addEventListener("click", async () => {
    clearError();
    callButton.disabled = true;
    try {
      await callEdge(config, client);
    } catch (e) {
      fail("Calling the edge", e);
    } finally {
      callButton.disabled = !session;
    }
  });
  signInButton.disabled = false;

  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    // The code is single-use: drop it from the address bar and history.
    history.replaceState(null, "", location.pathname);
    await finishSignIn(config, client, params).catch((e) => fail("Sign-in", e));
  } else {
    status("Ready: sign in to get a DPoP-bound token.");
  }
}

main().catch((e) => fail("Starting the demo", e));
