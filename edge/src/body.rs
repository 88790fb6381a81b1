//! Reading bodies (the issuer's JWKS, an ingested revocation document) with a
//! hard size cap applied while they stream in.

use futures_util::StreamExt;
use worker::ByteStream;

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
