//! Test support shared by every provider and every target (feature `testkit`).
//!
//! The suites here are plain functions over a [`crate::provider::SignatureVerifier`]
//! (or over data, for asynchronous providers such as WebCrypto), so the same
//! Wycheproof vectors and attack table run natively, in Node and in headless
//! Chromium, against RustCrypto, aws-lc-rs or WebCrypto. Vector files are passed
//! in as text so wasm builds can embed them with `include_str!`.
//!
//! Nothing here is meant for production code paths.

pub mod attacks;
pub mod fixture;
pub mod signer;
pub mod wycheproof;

/// Decodes lower- or upper-case hexadecimal; `None` on odd length or a non-hex digit.
#[must_use]
pub fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            match pair {
                [hi, lo] => Some(u8::try_from(digit(*hi)? * 16 + digit(*lo)?).ok()?),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_decodes_and_refuses_garbage() {
        assert_eq!(super::hex("00ff7A"), Some(vec![0, 255, 0x7a]));
        assert_eq!(super::hex("0"), None);
        assert_eq!(super::hex("zz"), None);
        assert_eq!(super::hex(""), Some(vec![]));
    }
}
