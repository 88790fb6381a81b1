//! Strict base64url (RFC 7515 §2): no padding, no whitespace, canonical trailing bits.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A base64url segment could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64url")]
pub struct Base64Error;

/// Decodes unpadded base64url, refusing padding and non-canonical encodings.
pub fn decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| Base64Error)
}

/// Encodes bytes as unpadded base64url.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_padding_and_standard_alphabet() {
        assert_eq!(decode(&encode(b"\xfb\xff")).unwrap(), b"\xfb\xff");
        assert!(decode("-_8").is_ok());
        assert!(decode("+/8").is_err(), "standard alphabet is not base64url");
        assert!(decode("YQ==").is_err(), "padding refused");
        assert!(decode("YR").is_err(), "non-canonical trailing bits refused");
        assert!(decode("Y Q").is_err());
    }
}
