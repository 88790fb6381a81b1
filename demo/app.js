// Gatehouse browser demo: authorization code + PKCE (S256) with the code
// bound to this browser's DPoP key (RFC 9449 §10 `dpop_jkt`), a DPoP-bound
// access token, and calls to the edge with a fresh proof each time. The
// DPoP key, proofs and DPoP-Nonce retries come from gatehouse-browser (Wasm).
//
// OpenID Connect, when the origin's discovery document says so: the sign-in
// also asks for `openid profile` with a `nonce`; the id_token is verified
// here (signature with WebCrypto and the origin's JWKS; iss, aud/azp, nonce,
// exp, iat, at_hash) before its claims are shown; /userinfo is read with the
// DPoP-bound token; "Sign out" goes to the end_session_endpoint and the
// returned `state` is checked.
//
// Tokens are kept in memory only; sessionStorage holds nothing but the PKCE
// verifier, `state` and `nonce` across the sign-in redirect and the sign-out
// `state` across the sign-out redirect, and they are removed on return.
// Nothing is ever written into the page with innerHTML.

import init, { DpopClient } from "./pkg/gatehouse_browser.js";

const APP_ID = "gatehouse-demo";
const PENDING = "gatehouse-demo-pending";
const SIGN_OUT_PENDING = "gatehouse-demo-sign-out";
const SCOPE = "read";
/** Added to SCOPE when the origin is an OpenID Connect provider. */
const OIDC_SCOPE = "openid profile";
/** id_token signature algorithms this page verifies, as WebCrypto parameters. */
const ID_TOKEN_ALGS = {
  ES256: {
    import: { name: "ECDSA", namedCurve: "P-256" },
    verify: { name: "ECDSA", hash: "SHA-256" },
    jwk: (k) => ({ kty: "EC", crv: k.crv, x: k.x, y: k.y }),
    kty: "EC",
  },
  RS256: {
    import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    verify: { name: "RSASSA-PKCS1-v1_5" },
    jwk: (k) => ({ kty: "RSA", n: k.n, e: k.e }),
    kty: "RSA",
  },
};
/** Allowed clock difference with the origin, seconds. */
const SKEW = 60;

const $ = (id) => document.getElementById(id);

/** The token response, in memory only. */
let session = null;
/** The origin's OpenID Connect discovery document, or null (plain OAuth). */
let oidc = null;
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

function unbase64url(text) {
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function jsonOf(part) {
  return JSON.parse(new TextDecoder().decode(unbase64url(part ?? "")));
}

/** The claims of our own access token, for display (the edge verifies it, not us). */
function claimsOf(jwt) {
  return jsonOf(jwt.split(".")[1]);
}

/**
 * The origin's OpenID Connect discovery document, when it has one for the
 * issuer we were configured with (else null: the page stays plain OAuth).
 */
async function discover(config) {
  const res = await fetch(new URL("/.well-known/openid-configuration", config.origin));
  if (!res.ok) return null;
  const doc = await res.json();
  // OpenID Connect Discovery 1.0 §4.3: the issuer must be the one we asked.
  if (doc.issuer !== config.origin) {
    throw new Error("the discovery document names another issuer");
  }
  return doc;
}

/**
 * Verifies an id_token from our own token request (OpenID Connect Core
 * §3.1.3.7, §3.1.3.8) and returns its claims; throws on any failed check.
 */
async function verifyIdToken(idToken, accessToken, expectedNonce, config) {
  const parts = idToken.split(".");
  if (parts.length !== 3) throw new Error("the id_token is not a compact JWS");
  const header = jsonOf(parts[0]);
  const alg = ID_TOKEN_ALGS[header.alg];
  const advertised = oidc.id_token_signing_alg_values_supported ?? [];
  if (!alg || !advertised.includes(header.alg)) {
    throw new Error(`the id_token's alg ${header.alg} is not one this page accepts`);
  }
  // The key: from the discovered jwks_uri, by kid, of the alg's key type.
  const jwksRes = await fetch(oidc.jwks_uri);
  if (!jwksRes.ok) throw new Error(`jwks_uri: HTTP ${jwksRes.status}`);
  const jwk = ((await jwksRes.json()).keys ?? []).find(
    (k) => k.kid === header.kid && k.kty === alg.kty && (!k.use || k.use === "sig"),
  );
  if (!jwk) throw new Error("no key in the origin's JWKS has the id_token's kid");
  const key = await crypto.subtle.importKey("jwk", alg.jwk(jwk), alg.import, false, ["verify"]);
  const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  if (!(await crypto.subtle.verify(alg.verify, key, unbase64url(parts[2]), signed))) {
    throw new Error("the id_token's signature does not verify");
  }
  const claims = jsonOf(parts[1]);
  const now = Math.floor(Date.now() / 1000);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const checks = [
    [claims.iss === oidc.issuer, "iss is not the issuer"],
    [aud.includes(config.client_id), "aud does not name this page's client"],
    [
      claims.azp === undefined ? aud.length === 1 : claims.azp === config.client_id,
      "azp is not this page's client",
    ],
    [typeof claims.sub === "string" && claims.sub !== "", "sub is missing"],
    [claims.nonce === expectedNonce, "nonce is not the one this page sent"],
    [Number.isInteger(claims.exp) && claims.exp + SKEW > now, "it has expired"],
    [Number.isInteger(claims.iat) && claims.iat - SKEW <= now, "iat is in the future"],
  ];
  // at_hash: the left half of SHA-256(access_token) (both algorithms use SHA-256).
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)),
  );
  checks.push([claims.at_hash === base64url(digest.slice(0, 16)), "at_hash does not match the access token"]);
  const failed = checks.find(([ok]) => !ok);
  if (failed) throw new Error(`the id_token is refused: ${failed[1]}`);
  return claims;
}

/** Fills `dl` with one row per claim (text only; times also as UTC). */
function showClaims(dl, claims) {
  dl.replaceChildren();
  for (const [name, value] of Object.entries(claims)) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.dataset.claim = name;
    let text = typeof value === "string" ? value : JSON.stringify(value);
    if (["exp", "iat", "auth_time", "updated_at"].includes(name) && Number.isInteger(value)) {
      text += ` (${new Date(value * 1000).toISOString()})`;
    }
    dd.textContent = text;
    dl.append(dt, dd);
  }
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
  const nonce = oidc ? randomString(16) : null;
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce }));
  const url = new URL("/authorize", config.origin);
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: oidc ? `${SCOPE} ${OIDC_SCOPE}` : SCOPE,
    state,
    code_challenge: await s256(verifier),
    code_challenge_method: "S256",
    dpop_jkt: client.jkt(),
  });
  if (nonce) params.set("nonce", nonce);
  url.search = params.toString();
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
  // OpenID Connect: nothing of the response is used unless its id_token verifies.
  let idClaims = null;
  if (oidc) {
    if (!body.id_token) throw new Error("the origin sent no id_token for scope openid");
    idClaims = await verifyIdToken(body.id_token, body.access_token, pending.nonce, config);
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
  if (idClaims) await showOpenIdConnect(client, idClaims);
}

/** The verified id_token's claims, and the userinfo answer. */
async function showOpenIdConnect(client, claims) {
  showClaims($("id-claims"), claims);
  const verdict = $("id-token-verdict");
  const header = jsonOf(session.id_token.split(".")[0]);
  verdict.textContent = `✔ id_token verified (${header.alg}, key ${header.kid}); nonce matched.`;
  verdict.className = "ok";
  $("id-token").hidden = false;
  $("sign-out").disabled = !oidc.end_session_endpoint;
  const res = await client.fetch(oidc.userinfo_endpoint, "GET", session.access_token);
  if (!res.ok) throw new Error(`userinfo: ${await describe(res)}`);
  const info = await res.json();
  if (info.sub !== claims.sub) throw new Error("userinfo names another user than the id_token");
  showClaims($("userinfo"), info);
  status(`Signed in as ${claims.sub}${info.preferred_username ? ` (${info.preferred_username})` : ""}. The token is bound to this browser's key.`);
}

/** Step 4: to the origin's end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0 §2). */
function signOut(config) {
  if (!session?.id_token || !oidc?.end_session_endpoint) throw new Error("sign in first");
  const state = randomString(16);
  sessionStorage.setItem(SIGN_OUT_PENDING, JSON.stringify({ state }));
  const url = new URL(oidc.end_session_endpoint);
  url.search = new URLSearchParams({
    id_token_hint: session.id_token,
    client_id: config.client_id,
    post_logout_redirect_uri: config.post_logout_redirect_uri,
    state,
  }).toString();
  session = null;
  status("Redirecting to the origin to sign out…");
  location.assign(url.toString());
}

/** Back from the end_session_endpoint: the state must be the one we sent. */
function finishSignOut(params) {
  const pending = JSON.parse(sessionStorage.getItem(SIGN_OUT_PENDING) ?? "null");
  sessionStorage.removeItem(SIGN_OUT_PENDING);
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("the state does not match the one this page sent");
  }
  $("signed-out").hidden = false;
  $("sign-out").disabled = true;
  status("Signed out at the origin (state verified). Sign in again to get a new token.");
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
  // Without discovery (or with an origin that is not an OpenID provider) the
  // page stays plain OAuth: sign in and call the edge.
  oidc = await discover(config).catch((e) => {
    fail("OpenID Connect discovery", e);
    return null;
  });

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
  $("sign-out").addEventListener("click", () => {
    clearError();
    try {
      signOut(config);
    } catch (e) {
      fail("Sign-out", e);
    }
  });
  signInButton.disabled = false;

  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    // The code is single-use: drop it from the address bar and history.
    history.replaceState(null, "", location.pathname);
    await finishSignIn(config, client, params).catch((e) => fail("Sign-in", e));
  } else if (params.has("state")) {
    // Back from the end_session_endpoint.
    history.replaceState(null, "", location.pathname);
    try {
      finishSignOut(params);
    } catch (e) {
      fail("Sign-out", e);
    }
  } else {
    status("Ready: sign in to get a DPoP-bound token.");
  }
}

main().catch((e) => fail("Starting the demo", e));
