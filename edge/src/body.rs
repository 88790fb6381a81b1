//! Reading bodies (the issuer's JWKS, an ingested revocation document) with a
//! hard size cap applied while they stream in.

use futures_util::StreamExt;
use worker::{ByteStream, Response};

/// Reads at most `cap` bytes; `None` as soon as the body passes the cap (it
/// is never read whole) or a chunk fails.
pub async fn read_capped(mut stream: ByteStream, cap: usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        if body.len().saturating_add(chunk.len()) > cap {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// A 200 answer's body (at most `cap` bytes) and its `Cache-Control`
/// `max-age`; `None` for any other status or an oversized body.
pub async fn read_ok_with_max_age(
    mut resp: Response,
    cap: usize,
) -> Option<(Vec<u8>, Option<i64>)> {
    if resp.status_code() != 200 {
        return None;
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .ok()
        .flatten()
        .and_then(|v| crate::jwks_cache::max_age(&v));
    let body = read_capped(resp.stream().ok()?, cap).await?;
    Some((body, max_age))
}
