// The floor: no authentication, the request forwarded to the upstream as is.
// `/log/…` first writes one JSON log line (as the edge does per request).
// `/const` answers from the worker itself (the cost of wrangler dev + workerd alone).
// Under /hops1/… or /hops2/… it first makes that many Durable Object round
// trips (each reads and writes one storage key, as the edge's rate limiter
// and DPoP replay guard do), to price those hops on their own.
export class Hop {
  constructor(state) {
    this.state = state;
  }
  async fetch() {
    const n = (await this.state.storage.get("n")) || 0;
    await this.state.storage.put("n", n + 1);
    return new Response(String(n));
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    let p = url.pathname;
    if (p === "/const") return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
    if (p.startsWith("/log/")) {
      // One JSON log line, like the edge writes per request.
      p = p.slice(4);
      console.log(JSON.stringify({ event: "request", method: request.method, path: p, status: 200, outcome: "forwarded", error: null, reason: null, client_id: "bench", iss: "http://127.0.0.1", latency_ms: 0 }));
    }
    const m = /^\/hops([12])(\/.*)$/.exec(p);
    if (m) {
      p = m[2];
      for (let i = 0; i < Number(m[1]); i++) {
        const stub = env.HOP.get(env.HOP.idFromName("hop" + i));
        const r = await stub.fetch("https://hop/", { method: "POST", body: "{}" });
        await r.text();
      }
    }
    return fetch(env.UPSTREAM_URL + p + url.search, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
