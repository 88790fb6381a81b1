//! Every error's message, pinned: they reach `error_description` and log
//! lines, and callers match on them (`Rejection`, docs/security.md). The
//! texts are those of the hand-written `Display` impls the `thiserror`
//! derives replaced; a change here is a change of the public behaviour.
#![allow(clippy::unwrap_used)]

use gatehouse_common::access_token::AccessTokenError;
use gatehouse_common::alg::{Algorithm, AlgorithmRefusal};
use gatehouse_common::b64::Base64Error;
use gatehouse_common::claims::ClaimError;
use gatehouse_common::dpop::DpopError;
use gatehouse_common::json::JsonError;
use gatehouse_common::jwk::{JwkError, KeyError};
use gatehouse_common::jws::JwsError;
use gatehouse_common::nonce::WeakNonceSecret;
use gatehouse_common::policy::{PathError, PolicyError};
use gatehouse_common::revocation::RevocationError;
use gatehouse_common::uri::UriError;
use std::error::Error as _;

fn check(cases: &[(&dyn std::error::Error, &str)]) {
    for (e, want) in cases {
        assert_eq!(e.to_string(), *want, "{e:?}");
        // The inner error is in the message, so it is not also a source
        // (a reporter walking the chain would print it twice).
        assert!(e.source().is_none(), "{e:?} has a source");
    }
}

#[test]
fn leaf_errors() {
    check(&[
        (&Base64Error, "invalid base64url"),
        (
            &WeakNonceSecret,
            "DPoP nonce secret must be at least 32 bytes",
        ),
        (&UriError::Malformed, "not an absolute http(s) URI"),
        (&UriError::Userinfo, "URI carries userinfo"),
        (&UriError::InvalidComponent, "URI has an invalid component"),
        (&JsonError::Syntax, "malformed JSON"),
        (&JsonError::NotAnObject, "JSON value is not an object"),
        (&JsonError::DuplicateMember, "duplicate JSON member name"),
        (&JsonError::TooDeep, "JSON nested too deeply"),
        (&ClaimError::Missing { claim: "exp" }, "missing claim `exp`"),
        (
            &ClaimError::Invalid { claim: "exp" },
            "claim `exp` is invalid",
        ),
        (
            &PolicyError::InvalidPrefix { prefix: "x".into() },
            "route prefix `x` is invalid",
        ),
        (
            &PolicyError::DuplicatePrefix {
                prefix: "/a".into(),
            },
            "route prefix `/a` is repeated",
        ),
        (
            &PathError::DotsAndSpaces,
            "the request path has a segment of only dots and spaces",
        ),
        (&KeyError::UnknownKid, "no key with that key id"),
        (&KeyError::KidRequired, "token has no key id"),
        (&KeyError::AmbiguousKid, "key id is ambiguous"),
        (
            &KeyError::AlgorithmMismatch {
                key: Some(Algorithm::Es256),
                header: Algorithm::Rs256,
            },
            "algorithm RS256 does not match the key",
        ),
    ]);
}

#[test]
fn jws_and_jwk_errors() {
    check(&[
        (
            &JwsError::TooLarge { limit: 8192 },
            "JWS longer than 8192 bytes",
        ),
        (&JwsError::Malformed, "not a compact JWS"),
        (
            &JwsError::Encrypted,
            "encrypted (JWE) tokens are not accepted",
        ),
        (
            &JwsError::Base64 { part: "header" },
            "JWS header is not base64url",
        ),
        (
            &JwsError::Json {
                part: "payload",
                error: JsonError::DuplicateMember,
            },
            "JWS payload: duplicate JSON member name",
        ),
        (&JwsError::MissingAlgorithm, "JWS header has no alg"),
        (
            &JwsError::Algorithm(AlgorithmRefusal::None),
            "alg none is not accepted",
        ),
        (
            &JwsError::Algorithm(AlgorithmRefusal::Symmetric),
            "symmetric algorithms are not accepted",
        ),
        (
            &JwsError::Algorithm(AlgorithmRefusal::Unsupported),
            "unsupported signature algorithm",
        ),
        (
            &JwsError::CriticalExtension,
            "critical header extensions are not supported",
        ),
        (
            &JwsError::ForbiddenHeader { name: "zip" },
            "header parameter `zip` is not accepted",
        ),
        (
            &JwsError::InvalidHeader { name: "kid" },
            "header parameter `kid` is invalid",
        ),
        (&JwsError::SignatureLength, "signature has the wrong length"),
        (&JwkError::Json(JsonError::Syntax), "JWK: malformed JSON"),
        (&JwkError::MissingMember { member: "x" }, "JWK lacks `x`"),
        (
            &JwkError::InvalidMember { member: "y" },
            "JWK member `y` is invalid",
        ),
        (
            &JwkError::PrivateKeyMaterial,
            "JWK contains private key material",
        ),
        (
            &JwkError::UnsupportedKeyType,
            "unsupported JWK key type or curve",
        ),
        (
            &JwkError::AlgorithmKeyMismatch,
            "JWK `alg` does not match its key type",
        ),
        (
            &JwkError::RsaModulusSize { bits: 1024 },
            "RSA modulus of 1024 bits is not allowed",
        ),
        (
            &JwkError::NotForSignatures,
            "JWK is not a signature verification key",
        ),
        (&JwkError::InvalidKeySet, "malformed JWK set"),
    ]);
}

#[test]
fn access_token_errors() {
    use AccessTokenError as E;
    check(&[
        (&E::Jws(JwsError::Malformed), "not a compact JWS"),
        (&E::WrongType, "token typ is not at+jwt"),
        (&E::EmbeddedKey, "access tokens must not embed a key"),
        (&E::UntrustedIssuer, "token issuer is not trusted"),
        (
            &E::AlgorithmNotAllowed {
                alg: Algorithm::EdDsa,
            },
            "algorithm EdDSA is not allowed",
        ),
        (&E::Key(KeyError::UnknownKid), "no key with that key id"),
        (&E::InvalidSignature, "signature verification failed"),
        (
            &E::Claim(ClaimError::Missing { claim: "sub" }),
            "missing claim `sub`",
        ),
        (&E::AudienceMismatch, "token audience does not match"),
        (&E::Expired { expired_at: 1 }, "the access token expired"),
        (&E::NotYetValid, "the access token is not yet valid"),
        (
            &E::IssuedInFuture,
            "the access token was issued in the future",
        ),
        (&E::TooOld, "the access token is too old"),
        (
            &E::UnsupportedConfirmation,
            "unsupported confirmation method",
        ),
    ]);
}

#[test]
fn dpop_errors() {
    use DpopError as E;
    check(&[
        (&E::Missing, "DPoP proof missing"),
        (&E::MultipleProofs, "more than one DPoP proof"),
        (
            &E::Jws(JwsError::CriticalExtension),
            "DPoP proof: critical header extensions are not supported",
        ),
        (
            &E::Claim(ClaimError::Invalid { claim: "htu" }),
            "DPoP proof: claim `htu` is invalid",
        ),
        (&E::WrongType, "DPoP proof typ is not dpop+jwt"),
        (
            &E::AlgorithmNotAllowed {
                alg: Algorithm::Rs256,
            },
            "DPoP proof algorithm RS256 is not allowed",
        ),
        (&E::MissingKey, "DPoP proof has no jwk"),
        (&E::PrivateKey, "DPoP proof jwk contains a private key"),
        (
            &E::InvalidKey(JwkError::UnsupportedKeyType),
            "DPoP proof unsupported JWK key type or curve",
        ),
        (
            &E::AlgorithmKeyMismatch,
            "DPoP proof alg does not match its jwk",
        ),
        (&E::InvalidSignature, "DPoP proof signature is invalid"),
        (
            &E::MethodMismatch,
            "DPoP proof htm does not match the request",
        ),
        (&E::InvalidHtu, "DPoP proof htu is invalid"),
        (&E::UriMismatch, "DPoP proof htu does not match the request"),
        (&E::NonceRequired, "a DPoP nonce is required"),
        (&E::NonceInvalid, "the DPoP nonce is invalid or stale"),
        (&E::Stale, "DPoP proof is too old"),
        (&E::IssuedInFuture, "DPoP proof is issued in the future"),
        (&E::MissingAth, "DPoP proof lacks ath"),
        (
            &E::AthMismatch,
            "DPoP proof ath does not match the access token",
        ),
        (&E::TokenNotBound, "access token is not DPoP-bound"),
        (&E::JktMismatch, "access token is bound to another key"),
        (
            &E::BoundTokenAsBearer,
            "DPoP-bound token presented as Bearer",
        ),
    ]);
}

#[test]
fn revocation_errors() {
    use RevocationError as E;
    check(&[
        (
            &E::Jws(JwsError::Encrypted),
            "revocation document: encrypted (JWE) tokens are not accepted",
        ),
        (&E::WrongType, "revocation document has the wrong typ"),
        (&E::EmbeddedKey, "revocation document must not embed a key"),
        (
            &E::AlgorithmNotAllowed {
                alg: Algorithm::Ps256,
            },
            "algorithm PS256 is not allowed",
        ),
        (
            &E::UntrustedIssuer,
            "revocation document issuer is not trusted",
        ),
        (
            &E::InvalidSignature,
            "revocation document signature is invalid",
        ),
        (
            &E::Claim(ClaimError::Missing { claim: "version" }),
            "revocation document: missing claim `version`",
        ),
        (
            &E::InvalidEntry { index: 3 },
            "revocation entry 3 is invalid",
        ),
        (
            &E::TooManyEntries,
            "revocation document has too many entries",
        ),
        (
            &E::Rollback {
                held: 7,
                offered: 5,
            },
            "revocation document version 5 is older than the held 7",
        ),
        (
            &E::IssuedInFuture,
            "revocation document is issued in the future",
        ),
        (
            &E::VersionAhead,
            "revocation document version is ahead of the clock",
        ),
    ]);
}
