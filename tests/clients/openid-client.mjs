// Drives the real origin and edge with npm `openid-client` (panva), an
// independent, widely used OAuth 2 / OpenID Connect client: every protocol
// step — discovery, PKCE, DPoP proofs and nonces, token requests and their
// validation, introspection, revocation — is the library's own API. Only the
// user's part (the origin's login and consent HTML forms) is filled in with
// plain `fetch` and a small cookie jar.
//
// Run by the e2e test `clients` (tests/tests/e2e/clients.rs). Prints one line
// per proven step ("ok: …"), "skip: … not served yet" for an OpenID Connect
// feature the origin's discovery does not advertise, and exits non-zero on
// the first failed assertion.
//
// Environment:
//   GH_ISSUER         the origin's issuer (http://127.0.0.1:PORT)
//   GH_EDGE           the edge's URL (the tokens' audience)
//   GH_CLIENT_ID      a confidential client (client_secret_basic) with the
//                     authorization_code, refresh_token, client_credentials
//                     and token-exchange grants, serving the edge's audience
//   GH_CLIENT_SECRET  its secret
//   GH_REDIRECT_URI   its registered redirect URI
//   GH_USER, GH_PASSWORD, GH_SUB   the user to sign in as, and its `sub`
//   GH_POST_LOGOUT_REDIRECT_URI    (optional) the client's registered
//                     post-logout redirect URI, for the logout step

import assert from "node:assert/strict";
import * as client from "openid-client";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const issuer = new URL(env("GH_ISSUER"));
const edge = env("GH_EDGE");
const clientId = env("GH_CLIENT_ID");
const clientSecret = env("GH_CLIENT_SECRET");
const redirectUri = env("GH_REDIRECT_URI");
const user = env("GH_USER");
const password = env("GH_PASSWORD");
const sub = env("GH_SUB");
const postLogoutRedirectUri = process.env.GH_POST_LOGOUT_REDIRECT_URI;

const ok = (msg) => console.log(`openid-client: ok: ${msg}`);
const skip = (msg) => console.log(`openid-client: skip: ${msg} (not served yet)`);

// ---- discovery -------------------------------------------------------------
// OpenID Connect discovery when the origin serves it; RFC 8414 otherwise.
const oidcProbe = await fetch(new URL("/.well-known/openid-configuration", issuer));
const oidc = oidcProbe.status === 200;
const config = await client.discovery(
  issuer,
  clientId,
  { redirect_uris: [redirectUri] },
  client.ClientSecretBasic(clientSecret),
  {
    algorithm: oidc ? "oidc" : "oauth2",
    // The e2e stack listens on plain-HTTP loopback.
    execute: [client.allowInsecureRequests],
  },
);
const meta = config.serverMetadata();
assert.equal(meta.issuer, issuer.href.replace(/\/$/, ""));
assert.ok(meta.code_challenge_methods_supported.includes("S256"));
assert.ok(meta.dpop_signing_alg_values_supported?.includes("ES256"));
ok(
  oidc
    ? "discovery: OpenID Connect (/.well-known/openid-configuration)"
    : "discovery: RFC 8414 (/.well-known/oauth-authorization-server; no OpenID configuration served yet)",
);

const scopesSupported = meta.scopes_supported ?? [];
const idTokens = oidc && scopesSupported.includes("openid");
const userinfo = oidc && typeof meta.userinfo_endpoint === "string";
const par = typeof meta.pushed_authorization_request_endpoint === "string";
const endSession = idTokens && typeof meta.end_session_endpoint === "string";

// ---- the user's part: the origin's login and consent forms -----------------

/** A cookie jar for one browser: `__Host-` cookies are Secure, which a
 * standard jar withholds from plain-HTTP loopback, so this one keeps pairs. */
class Jar {
  #pairs = new Map();
  take(resp) {
    for (const line of resp.headers.getSetCookie()) {
      const pair = line.split(";")[0];
      const eq = pair.indexOf("=");
      this.#pairs.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  header() {
    return [...this.#pairs].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

function hidden(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  assert.ok(m, `hidden field ${name} in the form`);
  return m[1].replaceAll("&quot;", '"').replaceAll("&amp;", "&");
}

/** Signs in at `authorizationUrl` and consents in the browser `jar`; returns
 * the redirect it ends with. */
async function signIn(authorizationUrl, jar = new Jar()) {
  const get = async (url) => {
    const r = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
    jar.take(r);
    return r;
  };
  const post = async (url, fields) => {
    const r = await fetch(url, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: jar.header(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
    jar.take(r);
    return r;
  };
  const page = await get(authorizationUrl);
  assert.equal(page.status, 200, "the login page");
  const loginHtml = await page.text();
  const login = await post(new URL("/authorize/login", issuer), {
    request: hidden(loginHtml, "request"),
    csrf: hidden(loginHtml, "csrf"),
    username: user,
    password,
  });
  assert.equal(login.status, 303, "login accepted");
  let consent = await get(new URL(login.headers.get("location"), issuer));
  if (consent.status === 200) {
    const html = await consent.text();
    consent = await post(new URL("/authorize/consent", issuer), {
      request: hidden(html, "request"),
      csrf: hidden(html, "csrf"),
      decision: "approve",
    });
  }
  assert.equal(consent.status, 303, "back to the client");
  const location = new URL(consent.headers.get("location"));
  assert.equal(location.origin + location.pathname, redirectUri);
  return location;
}

/** Authorization code + PKCE S256 (+ DPoP with a `dpop` handle), through
 * PAR with `usePar`, signing in with the browser `jar` (a new one by default). */
async function codeFlow(dpop, { usePar, jar }) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = idTokens ? client.randomNonce() : undefined;
  const params = {
    redirect_uri: redirectUri,
    scope: idTokens ? "openid read" : "read",
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  };
  if (nonce) params.nonce = nonce;
  const url = usePar
    ? await client.buildAuthorizationUrlWithPAR(config, params, dpop ? { DPoP: dpop } : undefined)
    : client.buildAuthorizationUrl(config, params);
  if (usePar) {
    assert.ok(url.searchParams.get("request_uri"), "PAR: a request_uri");
    assert.equal(url.searchParams.get("code_challenge"), null, "PAR: the request stays pushed");
  }
  const back = await signIn(url, jar);
  const tokens = await client.authorizationCodeGrant(
    config,
    back,
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: !!nonce },
    undefined,
    dpop ? { DPoP: dpop } : undefined,
  );
  assert.equal(tokens.token_type.toLowerCase(), dpop ? "dpop" : "bearer", "the access token's type");
  assert.ok(tokens.refresh_token, "a refresh token");
  return tokens;
}

async function atEdge(token, dpop, path = "/orders/7") {
  return client.fetchProtectedResource(config, token, new URL(path, edge), "GET", undefined, undefined, dpop ? { DPoP: dpop } : undefined);
}

/** Polls the edge until it refuses `token` (revocations are pushed to it). */
async function untilEdgeRefuses(token, dpop, what) {
  const started = Date.now();
  for (;;) {
    const r = await atEdge(token, dpop).catch((e) => e);
    const status = r instanceof Response ? r.status : r?.status ?? r?.response?.status;
    if (status === 401) return Date.now() - started;
    assert.equal(status, 200, `${what}: unexpected edge answer ${status} (${r})`);
    assert.ok(Date.now() - started < 10_000, `${what}: the edge still accepts it after 10 s`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function expectInvalidGrant(promise, what) {
  const err = await promise.then(
    () => null,
    (e) => e,
  );
  assert.ok(err, `${what}: refused`);
  assert.equal(err.error, "invalid_grant", `${what}: ${err}`);
}

// ---- authorization code + PKCE + DPoP ----------------------------------------
const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
const t1 = await codeFlow(dpop, { usePar: false });
ok("authorization code + PKCE S256 + DPoP (confidential client, client_secret_basic): DPoP-bound access and refresh tokens");

if (idTokens) {
  const claims = t1.claims();
  assert.ok(claims, "an id_token");
  assert.equal(claims.sub, sub);
  assert.ok(claims.sid, "id_token sid");
  assert.ok(claims.at_hash, "id_token at_hash (openid-client checks it when present)");
  ok("id_token validated by openid-client (signature, iss, aud, exp, nonce, at_hash)");
} else {
  skip("id_token with nonce and at_hash: no `openid` scope in discovery");
}

// ---- the edge ----------------------------------------------------------------
{
  const r = await atEdge(t1.access_token, dpop);
  assert.equal(r.status, 200, "the edge accepts the DPoP-bound token with its proof");
  const seen = await r.json();
  assert.equal(seen.identity["gatehouse-sub"], sub);
  assert.equal(seen.identity["gatehouse-client-id"], clientId);
  ok("edge: fetchProtectedResource with a DPoP proof → 200, the upstream saw the user's sub and client_id");
  for (const [scheme, label] of [
    ["Bearer", "as a Bearer token"],
    ["DPoP", "under the DPoP scheme without a proof"],
  ]) {
    const bare = await fetch(new URL("/orders/7", edge), { headers: { authorization: `${scheme} ${t1.access_token}` } });
    assert.equal(bare.status, 401, `the bound token ${label}`);
  }
  ok("edge: the DPoP-bound token without its proof (Bearer, or DPoP scheme with no DPoP header) → 401");
}

// ---- introspection (RFC 7662) ---------------------------------------------------
{
  const info = await client.tokenIntrospection(config, t1.access_token);
  assert.equal(info.active, true);
  assert.equal(info.sub, sub);
  assert.equal(info.client_id, clientId);
  assert.ok(info.cnf?.jkt, "introspection names the DPoP key (cnf.jkt)");
  ok("introspection (RFC 7662): the access token is active, with sub, client_id and cnf.jkt");
}

// ---- userinfo (OpenID Connect Core §5.3) ----------------------------------------
if (userinfo) {
  const info = await client.fetchUserInfo(config, t1.access_token, sub, { DPoP: dpop });
  assert.equal(info.sub, sub);
  ok("userinfo with the DPoP-bound token and its proof");
  const bare = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${t1.access_token}` } });
  assert.equal(bare.status, 401, "userinfo refuses the DPoP-bound token without its proof");
  ok("userinfo refuses the DPoP-bound token as a Bearer token (401)");
  const bearer = await codeFlow(undefined, { usePar: false });
  const plain = await client.fetchUserInfo(config, bearer.access_token, sub);
  assert.equal(plain.sub, sub);
  ok("userinfo with a Bearer access token (a grant without DPoP)");
} else {
  skip("userinfo (Bearer and DPoP): no userinfo_endpoint in discovery");
}

// ---- refresh with rotation, reuse detection ------------------------------------------
{
  const t2 = await client.refreshTokenGrant(config, t1.refresh_token, undefined, { DPoP: dpop });
  assert.notEqual(t2.refresh_token, t1.refresh_token, "the refresh token rotates");
  assert.equal(t2.token_type.toLowerCase(), "dpop");
  assert.equal((await atEdge(t2.access_token, dpop)).status, 200);
  ok("refreshTokenGrant: a new DPoP-bound access token and a rotated refresh token; the edge accepts it");
  if (idTokens) {
    const before = t1.claims();
    const after = t2.claims();
    assert.ok(after, "the refresh yields an id_token");
    assert.equal(after.sid, before.sid, "the same session");
    assert.equal(after.sub, before.sub);
    ok("refresh: a new id_token for the same sid");
  } else {
    skip("refresh yielding an id_token with the same sid: no `openid` scope in discovery");
  }
  await expectInvalidGrant(client.refreshTokenGrant(config, t1.refresh_token, undefined, { DPoP: dpop }), "reuse of the rotated refresh token");
  ok("reuse of the old refresh token → invalid_grant");
  await expectInvalidGrant(client.refreshTokenGrant(config, t2.refresh_token, undefined, { DPoP: dpop }), "the family's newest refresh token");
  const ms = await untilEdgeRefuses(t2.access_token, dpop, "the family's newest access token");
  const info = await client.tokenIntrospection(config, t2.access_token);
  assert.equal(info.active, false, "introspection: the family's access token is inactive");
  ok(`reuse revoked the family: its newest refresh token → invalid_grant, introspection inactive, the edge refused its access token after ${ms} ms`);
}

// ---- PAR (RFC 9126) and a second grant for revocation -----------------------------------
const dpop2 = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
let t3;
if (par) {
  t3 = await codeFlow(dpop2, { usePar: true });
  ok("PAR (RFC 9126): buildAuthorizationUrlWithPAR → login → code → DPoP-bound tokens");
} else {
  skip("pushed authorization requests: no pushed_authorization_request_endpoint in discovery");
  t3 = await codeFlow(dpop2, { usePar: false });
  ok("a second sign-in (remembered consent) → DPoP-bound tokens");
}

// ---- token exchange (RFC 8693) -----------------------------------------------------------
{
  const exchanged = await client.genericGrantRequest(config, "urn:ietf:params:oauth:grant-type:token-exchange", {
    subject_token: t3.access_token,
    subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    audience: edge,
    scope: "read",
  }, { DPoP: dpop2 }); // the subject token is DPoP-bound: the proof is of its key
  assert.equal(exchanged.issued_token_type, "urn:ietf:params:oauth:token-type:access_token");
  const bound = exchanged.token_type.toLowerCase() === "dpop";
  const r = await atEdge(exchanged.access_token, bound ? dpop2 : undefined);
  assert.equal(r.status, 200, "the edge accepts the exchanged token");
  const seen = await r.json();
  assert.equal(seen.identity["gatehouse-sub"], sub, "the subject stays the user");
  assert.equal(seen.identity["gatehouse-client-id"], clientId);
  ok(`token exchange (RFC 8693, genericGrantRequest with a DPoP proof of the subject token's key): a ${exchanged.token_type} token the edge accepts for the user`);
}

// ---- revocation (RFC 7009) --------------------------------------------------------------
{
  await client.tokenRevocation(config, t3.access_token, { token_type_hint: "access_token" });
  const info = await client.tokenIntrospection(config, t3.access_token);
  assert.equal(info.active, false, "introspection after revocation");
  const ms = await untilEdgeRefuses(t3.access_token, dpop2, "the revoked access token");
  ok(`tokenRevocation (RFC 7009) of the access token: introspection inactive, the edge refused it after ${ms} ms`);
  await client.tokenRevocation(config, t3.refresh_token, { token_type_hint: "refresh_token" });
  await expectInvalidGrant(client.refreshTokenGrant(config, t3.refresh_token, undefined, { DPoP: dpop2 }), "the revoked refresh token");
  ok("tokenRevocation of the refresh token: refreshing with it → invalid_grant");
}

// ---- client_credentials ------------------------------------------------------------------
{
  const dpop3 = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
  const cc = await client.clientCredentialsGrant(config, { scope: "read" }, { DPoP: dpop3 });
  assert.equal(cc.token_type.toLowerCase(), "dpop");
  const r = await atEdge(cc.access_token, dpop3);
  assert.equal(r.status, 200);
  const seen = await r.json();
  assert.equal(seen.identity["gatehouse-sub"], clientId, "client_credentials: sub is the client");
  ok("clientCredentialsGrant with DPoP: the edge accepts it, sub is the client");
}

// ---- a grant without DPoP ------------------------------------------------------------------
{
  const bearer = await codeFlow(undefined, { usePar: false });
  const r = await atEdge(bearer.access_token, undefined);
  assert.equal(r.status, 200, "the edge accepts the Bearer token");
  assert.equal((await r.json()).identity["gatehouse-sub"], sub);
  ok("authorization code + PKCE without DPoP: a Bearer token the edge accepts (fetchProtectedResource)");
}

// ---- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) ------------------------
if (endSession) {
  const browser = new Jar();
  const dpop4 = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
  const t = await codeFlow(dpop4, { usePar: false, jar: browser });
  assert.equal((await atEdge(t.access_token, dpop4)).status, 200, "the session's access token works");
  const state = client.randomState();
  const params = { id_token_hint: t.id_token, state };
  if (postLogoutRedirectUri) params.post_logout_redirect_uri = postLogoutRedirectUri;
  const url = client.buildEndSessionUrl(config, params);
  assert.equal(url.origin + url.pathname, meta.end_session_endpoint);
  // The browser follows it through the real origin, with its session cookie.
  const r = await fetch(url, { redirect: "manual", headers: { cookie: browser.header() } });
  browser.take(r);
  if (postLogoutRedirectUri) {
    assert.equal(r.status, 303, "back to the RP without a confirmation page (the hint names this session)");
    const back = new URL(r.headers.get("location"));
    assert.equal(back.origin + back.pathname, postLogoutRedirectUri);
    assert.equal(back.searchParams.get("state"), state, "state echoed");
  } else {
    assert.equal(r.status, 200, "the signed-out page");
    assert.match(await r.text(), /You are signed out/);
  }
  const ms = await untilEdgeRefuses(t.access_token, dpop4, "the logged-out session's access token");
  assert.ok(ms < 1000, `the edge refused the session's token only after ${ms} ms`);
  await expectInvalidGrant(client.refreshTokenGrant(config, t.refresh_token, undefined, { DPoP: dpop4 }), "the logged-out session's refresh token");
  ok(`RP-initiated logout: buildEndSessionUrl with id_token_hint, followed through the origin (session ended, back to the RP with state); the edge refused the session's access token after ${ms} ms; its refresh token → invalid_grant`);
} else {
  skip("RP-initiated logout: no end_session_endpoint in discovery");
}

console.log("openid-client: all steps passed");
