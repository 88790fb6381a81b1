//! The grant types this server implements (RFC 6749 §4, RFC 8693): one enum
//! for client records, the discovery metadata, the token endpoint's dispatch
//! and the CLI. A new grant type is a new variant here, its flow in a domain
//! module of its own, and one arm in `http::token`'s dispatch.

use serde::{Deserialize, Serialize};

/// A grant type, spelled on the wire as [`GrantType::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantType {
    /// RFC 6749 §4.1 with PKCE (RFC 7636).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8693 token exchange.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// Every grant type, in the order the discovery metadata lists them.
    pub const ALL: [Self; 4] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::TokenExchange,
    ];

    /// The registered name (`grant_type` parameter value).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// The grant type named `s` (exact match), if this server implements it.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a grant type this server implements.
#[derive(Debug, thiserror::Error)]
#[error("unknown grant type (supported: client_credentials, authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange)")]
pub struct UnknownGrantType;

impl std::str::FromStr for GrantType {
    type Err = UnknownGrantType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownGrantType)
    }
}

#[cfg(test)]
mod tests {
    use super::GrantType;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for g in GrantType::ALL {
            let json = serde_json::to_string(&g).expect("serialize");
            assert_eq!(json, format!("\"{}\"", g.as_str()));
            assert_eq!(serde_json::from_str::<GrantType>(&json).expect("parse"), g);
            assert_eq!(GrantType::from_name(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::from_name("password"), None);
        assert_eq!(GrantType::from_name("Client_Credentials"), None);
    }
}
