// The JavaScript alternative: the same checks as the Gatehouse edge, done by
// npm `jose` — access token: signature (remote JWKS), iss, aud, exp/iat/nbf,
// typ at+jwt, required claims; DPoP (RFC 9449): proof typ dpop+jwt, signature
// with the embedded jwk, htm, htu, iat window, ath, cnf.jkt thumbprint, and no
// Bearer downgrade of a bound token. Then it forwards like the edge does
// (credentials stripped, identity headers added). No rate limiter and no
// revocation list: those are Gatehouse extras (see BENCHMARKS.md). A DPoP
// replay guard only when the REPLAY_GUARD Durable Object is bound (the
// "jose + replay guard" configuration): the same design as the edge's — one
// object per jkt, a proof's jti|htu remembered in storage until its iat window
// closes, pruned by an alarm — so that row compares equal work.
import {
  jwtVerify,
  createRemoteJWKSet,
  EmbeddedJWK,
  calculateJwkThumbprint,
  decodeJwt,
  base64url,
} from "jose";

export class ReplayGuard {
  constructor(state) {
    this.state = state;
    this.alarmPending = false;
  }
  async fetch(request) {
    const { key, expires_at, now } = await request.json();
    const storage = this.state.storage;
    const seen = await storage.get(key);
    const replayed = seen !== undefined && now < seen;
    if (!replayed) {
      await storage.put(key, Math.max(seen ?? 0, expires_at));
      if (!this.alarmPending) {
        if ((await storage.getAlarm()) === null) await storage.setAlarm(Date.now() + (expires_at + 5 - now) * 1000);
        this.alarmPending = true;
      }
    }
    return Response.json({ replayed });
  }
  async alarm() {
    this.alarmPending = false;
    const now = Math.floor(Date.now() / 1000);
    let next = null;
    const expired = [];
    for (const [k, exp] of await this.state.storage.list()) {
      if (exp <= now - 5) expired.push(k);
      else next = next === null ? exp : Math.min(next, exp);
    }
    if (expired.length) await this.state.storage.delete(expired);
    if (next !== null) {
      await this.state.storage.setAlarm(Date.now() + Math.max(1, next + 5 - now) * 1000);
      this.alarmPending = true;
    }
  }
}

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

async function authenticate(request, s, env) {
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
  if (env.REPLAY_GUARD) {
    const now = Math.floor(Date.now() / 1000);
    const stub = env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(jkt));
    const r = await stub.fetch("https://replay-guard/check", {
      method: "POST",
      body: JSON.stringify({ key: `${p.jti}|${p.htu}`, expires_at: p.iat + s.dpopMaxAge + 5, now }),
    });
    if (!r.ok) throw ["DPoP", "server_error", "the replay guard is unavailable"];
    if ((await r.json()).replayed) throw ["DPoP", "invalid_dpop_proof", "the DPoP proof was already used"];
  }
  return payload;
}

export default {
  async fetch(request, env) {
    const s = setup(env);
    let claims;
    try {
      claims = await authenticate(request, s, env);
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
