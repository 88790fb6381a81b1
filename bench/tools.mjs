// Token/proof generator for the benchmarks (Node, no dependencies beyond node:crypto).
//   node bench/tools.mjs keygen OUT.json                       ES256 DPoP key (private JWK)
//   node bench/tools.mjs proofs KEY.json HTM HTU N OUT [TOKEN]  N fresh DPoP proofs, one a line
// (with TOKEN, each proof carries ath = base64url(SHA-256(TOKEN))).
import { generateKeyPairSync, createPrivateKey, sign, createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const b64u = (buf) => Buffer.from(buf).toString("base64url");

export function keygen() {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ format: "jwk" });
}

export function publicJwk(jwk) {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

export function proofMaker(jwk) {
  const key = createPrivateKey({ key: jwk, format: "jwk" });
  const header = b64u(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: publicJwk(jwk) }));
  return (htm, htu, token) => {
    const claims = { jti: b64u(randomBytes(16)), htm, htu, iat: Math.floor(Date.now() / 1000) };
    if (token) claims.ath = b64u(createHash("sha256").update(token).digest());
    const input = header + "." + b64u(JSON.stringify(claims));
    const sig = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    return input + "." + b64u(sig);
  };
}

export function writeProofs(jwk, htm, htu, n, out, token) {
  const make = proofMaker(jwk);
  const lines = new Array(n);
  for (let i = 0; i < n; i++) lines[i] = make(htm, htu, token);
  writeFileSync(out, lines.join("\n") + "\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === "keygen") writeFileSync(a[0], JSON.stringify(keygen()));
  else if (cmd === "proofs")
    writeProofs(JSON.parse(readFileSync(a[0], "utf8")), a[1], a[2], Number(a[3]), a[4], a[5]);
  else {
    console.error("usage: tools.mjs keygen OUT | proofs KEY HTM HTU N OUT [TOKEN]");
    process.exit(2);
  }
}
