// The JavaScript alternative: the same checks as the Gatehouse edge, done by
// npm `jose` — access token: signature (remote JWKS), iss, aud, exp/iat/nbf,
// typ at+jwt, required claims; DPoP (RFC 9449): proof typ dpop+jwt, signature
// with the embedded jwk, htm, htu, iat window, ath, cnf.jkt thumbprint, and no
// Bearer downgrade of a bound token. Then it forwards like the edge does
// (credentials stripped, identity headers added). No rate limiter, no replay
// guard and no revocation list: those are Gatehouse extras (see BENCHMARKS.md).
import {
  jwtVerify,
  createRemoteJWKSet,
  EmbeddedJWK,
  calculateJwkThumbprint,
  decodeJwt,
  base64url,
} from "jose";

let state;
function setup(env) {
  if (state) return state;
  const issuers = new Map();
  for (const i of JSON.parse(env.ISSUERS)) {
    issuers.set(i.iss, { jwks: createRemoteJWKSet(new URL(i.jwks_url)), algs: i.algs });
  }
  state = {
    issuers,
    audience: env.AUDIENCE,
    upstream: env.UPSTREAM_URL,
    dpopMaxAge: Number(env.DPOP_MAX_AGE_SECS || 60),
  };
  return state;
}

function refuse(scheme, code, description) {
  return new Response(JSON.stringify({ error: code, error_description: description }), {
    status: 401,
    headers: {
      "content-type": "application/json",
      "www-authenticate": `${scheme} error="${code}", error_description="${description}"`,
    },
  });
}

async function authenticate(request, s) {
  const auth = request.headers.get("authorization") || "";
  const sp = auth.indexOf(" ");
  const scheme = sp > 0 ? auth.slice(0, sp) : "";
  const token = auth.slice(sp + 1).trim();
  const isDpop = scheme.toLowerCase() === "dpop";
  if (!isDpop && scheme.toLowerCase() !== "bearer") throw ["Bearer", "invalid_request", "missing credentials"];
  const label = isDpop ? "DPoP" : "Bearer";
  let iss;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    throw [label, "invalid_token", "malformed token"];
  }
  const issuer = s.issuers.get(iss);
  if (!issuer) throw [label, "invalid_token", "untrusted issuer"];
  let payload;
  try {
    ({ payload } = await jwtVerify(token, issuer.jwks, {
      issuer: iss,
      audience: s.audience,
      typ: "at+jwt",
      algorithms: issuer.algs,
      clockTolerance: 30,
      requiredClaims: ["exp", "iat", "sub", "client_id", "jti"],
    }));
  } catch (e) {
    throw [label, "invalid_token", String(e.code || e.message)];
  }
  const jkt = payload.cnf && payload.cnf.jkt;
  if (!isDpop) {
    if (jkt) throw ["Bearer", "invalid_token", "a DPoP-bound token presented as Bearer"];
    return payload;
  }
  if (!jkt) throw ["DPoP", "invalid_token", "token is not DPoP-bound"];
  const proofRaw = request.headers.get("dpop");
  if (!proofRaw) throw ["DPoP", "invalid_dpop_proof", "missing DPoP proof"];
  let proof;
  try {
    proof = await jwtVerify(proofRaw, EmbeddedJWK, {
      typ: "dpop+jwt",
      algorithms: ["ES256", "EdDSA"],
      maxTokenAge: s.dpopMaxAge,
      clockTolerance: 5,
      requiredClaims: ["jti", "htm", "htu", "iat"],
    });
  } catch (e) {
    throw ["DPoP", "invalid_dpop_proof", String(e.code || e.message)];
  }
  const p = proof.payload;
  const url = new URL(request.url);
  url.search = "";
  url.hash = "";
  if (p.htm !== request.method) throw ["DPoP", "invalid_dpop_proof", "htm mismatch"];
  let htu;
  try {
    htu = new URL(p.htu);
  } catch {
    throw ["DPoP", "invalid_dpop_proof", "invalid htu"];
  }
  if (htu.search || htu.hash || htu.href !== url.href) throw ["DPoP", "invalid_dpop_proof", "htu mismatch"];
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  if (p.ath !== base64url.encode(new Uint8Array(digest))) throw ["DPoP", "invalid_dpop_proof", "ath mismatch"];
  if ((await calculateJwkThumbprint(proof.protectedHeader.jwk, "sha256")) !== jkt)
    throw ["DPoP", "invalid_token", "jkt mismatch"];
  return payload;
}

export default {
  async fetch(request, env) {
    const s = setup(env);
    let claims;
    try {
      claims = await authenticate(request, s);
    } catch (e) {
      if (Array.isArray(e)) return refuse(...e);
      throw e;
    }
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("authorization");
    headers.delete("dpop");
    headers.set("gatehouse-sub", String(claims.sub));
    headers.set("gatehouse-client-id", String(claims.client_id));
    headers.set("gatehouse-scope", String(claims.scope || ""));
    headers.set("gatehouse-token-id", String(claims.jti));
    headers.set("gatehouse-issuer", String(claims.iss));
    if (claims.cnf && claims.cnf.jkt) headers.set("gatehouse-jkt", claims.cnf.jkt);
    return fetch(s.upstream + url.pathname + url.search, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
