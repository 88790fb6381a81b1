// The floor for signature checking: bare `crypto.subtle.verify` of the same
// signatures (the access token's, and for DPoP also the proof's), with the
// issuer keys imported once and cached by kid, the proof key cached by its
// JWK text. No claim checks at all: only what cannot be avoided. Forwards like
// the pass-through worker.
const dec = new TextDecoder();
function b64u(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function params(alg) {
  if (alg === "ES256")
    return [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }];
  if (alg === "EdDSA") return [{ name: "Ed25519" }, { name: "Ed25519" }];
  throw new Error("unsupported alg " + alg);
}

const bare = ({ kty, crv, x, y }) => (y ? { kty, crv, x, y } : { kty, crv, x });
let keys; // kid -> Promise<CryptoKey>
const proofKeys = new Map(); // jwk JSON -> Promise<CryptoKey>
async function issuerKeys(env) {
  if (!keys) {
    keys = (async () => {
      const m = new Map();
      for (const url of JSON.parse(env.JWKS_URLS)) {
        const set = await (await fetch(url)).json();
        for (const jwk of set.keys) {
          const [imp] = params(jwk.alg || (jwk.crv === "Ed25519" ? "EdDSA" : "ES256"));
          m.set(jwk.kid, await crypto.subtle.importKey("jwk", bare(jwk), imp, false, ["verify"]));
        }
      }
      return m;
    })();
  }
  return keys;
}

async function verifyJws(jws, keyFor) {
  const a = jws.indexOf(".");
  const b = jws.lastIndexOf(".");
  const header = JSON.parse(dec.decode(b64u(jws.slice(0, a))));
  const key = await keyFor(header);
  const [, ver] = params(header.alg);
  const ok = await crypto.subtle.verify(
    ver,
    key,
    b64u(jws.slice(b + 1)),
    new TextEncoder().encode(jws.slice(0, b)),
  );
  if (!ok) throw new Error("bad signature");
}

export default {
  async fetch(request, env) {
    const auth = request.headers.get("authorization") || "";
    const token = auth.slice(auth.indexOf(" ") + 1);
    if (!token) return new Response("invalid_request: no token", { status: 401 });
    try {
      const ks = await issuerKeys(env);
      await verifyJws(token, (h) => ks.get(h.kid));
      const proof = request.headers.get("dpop");
      if (proof) {
        await verifyJws(proof, (h) => {
          const k = JSON.stringify(h.jwk);
          let p = proofKeys.get(k);
          if (!p) {
            p = crypto.subtle.importKey("jwk", bare(h.jwk), params(h.alg)[0], false, ["verify"]);
            proofKeys.set(k, p);
          }
          return p;
        });
      }
    } catch (e) {
      return new Response("invalid_token: " + e.message, { status: 401 });
    }
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("authorization");
    headers.delete("dpop");
    return fetch(env.UPSTREAM_URL + url.pathname + url.search, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
