//! HTTP(S) URI normalization for comparing a DPoP proof's `htu` with the
//! request URI (RFC 9449 §4.3 check 9).
//!
//! Syntax-based normalization (RFC 3986 §6.2.2): scheme and host lower-cased,
//! percent-encodings upper-cased and unreserved characters decoded, dot
//! segments removed; scheme-based normalization (§6.2.3): the default port
//! dropped and an empty path written as `/`. Userinfo is refused.

/// Why a URI could not be normalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// Not `http://` or `https://` followed by a host.
    #[error("not an absolute http(s) URI")]
    Malformed,
    /// The URI carries userinfo (`user@host`).
    #[error("URI carries userinfo")]
    Userinfo,
    /// A bad percent-encoding, port or character.
    #[error("URI has an invalid component")]
    InvalidComponent,
}

/// A normalized `scheme://authority/path`, with whether a query or fragment was cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedUri {
    /// `scheme://host[:port]/path`, normalized, without query or fragment.
    pub target: String,
    /// The input had a `?query` or `#fragment`.
    pub had_query_or_fragment: bool,
}

/// Normalizes an absolute `http`/`https` URI.
pub fn normalize(uri: &str) -> Result<NormalizedUri, UriError> {
    if uri.len() > 8 * 1024 || uri.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(UriError::InvalidComponent);
    }
    let (scheme, rest) = uri.split_once("://").ok_or(UriError::Malformed)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(UriError::Malformed),
    };
    let cut = rest.find(['?', '#']);
    let had_query_or_fragment = cut.is_some();
    let rest = match cut {
        Some(i) => rest.get(..i).ok_or(UriError::Malformed)?,
        None => rest,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (
            rest.get(..i).ok_or(UriError::Malformed)?,
            rest.get(i..).ok_or(UriError::Malformed)?,
        ),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(UriError::Userinfo);
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return Err(UriError::Malformed);
    }
    let host = normalize_percent(host)?.to_ascii_lowercase();
    let mut target = format!("{scheme}://{host}");
    if let Some(p) = port {
        if p != default_port {
            target.push(':');
            target.push_str(&p.to_string());
        }
    }
    target.push_str(&remove_dot_segments(&normalize_percent(path)?));
    Ok(NormalizedUri {
        target,
        had_query_or_fragment,
    })
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(UriError::Malformed)?;
        let host = authority.get(..=end).ok_or(UriError::Malformed)?;
        match authority.get(end + 1..) {
            Some("") | None => (host, None),
            Some(p) => (host, Some(p.strip_prefix(':').ok_or(UriError::Malformed)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| UriError::InvalidComponent)?)
        }
        Some(_) => return Err(UriError::InvalidComponent),
    };
    Ok((host, port))
}

/// RFC 3986 §6.2.2.1–2: upper-case hex digits, decode unreserved characters.
fn normalize_percent(s: &str) -> Result<String, UriError> {
    let mut out = String::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(char::from(b));
            continue;
        }
        let hi = bytes.next().and_then(|c| char::from(c).to_digit(16));
        let lo = bytes.next().and_then(|c| char::from(c).to_digit(16));
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(UriError::InvalidComponent);
        };
        let v = u8::try_from(hi * 16 + lo).map_err(|_| UriError::InvalidComponent)?;
        if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(v));
        } else {
            out.push_str(&format!("%{v:02X}"));
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut s = String::from("/");
    s.push_str(&out.join("/"));
    if trailing_slash && !s.ends_with('/') {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s).unwrap().target
    }

    #[test]
    fn case_default_ports_and_empty_path() {
        assert_eq!(
            n("HTTPS://Server.Example.COM/token"),
            "https://server.example.com/token"
        );
        assert_eq!(
            n("https://server.example.com:443/token"),
            "https://server.example.com/token"
        );
        assert_eq!(n("http://a.example:80"), "http://a.example/");
        assert_eq!(n("http://a.example:8080/x"), "http://a.example:8080/x");
        assert_eq!(n("https://a.example:80/x"), "https://a.example:80/x");
        assert_eq!(n("http://[::1]:8787/x"), "http://[::1]:8787/x");
        assert_eq!(n("http://[::1]:80/x"), "http://[::1]/x");
    }

    #[test]
    fn percent_encoding_and_dot_segments() {
        assert_eq!(
            n("https://a.example/%7euser/%2f"),
            "https://a.example/~user/%2F"
        );
        assert_eq!(n("https://a.example/a/./b/../c"), "https://a.example/a/c");
        assert_eq!(n("https://a.example/a/b/.."), "https://a.example/a/");
        assert_eq!(n("https://a.example/../../x"), "https://a.example/x");
        // Path case is significant.
        assert_ne!(n("https://a.example/Token"), n("https://a.example/token"));
    }

    #[test]
    fn query_and_fragment_are_cut_and_reported() {
        let u = normalize("https://a.example/r?x=1#f").unwrap();
        assert_eq!(u.target, "https://a.example/r");
        assert!(u.had_query_or_fragment);
        assert!(
            !normalize("https://a.example/r")
                .unwrap()
                .had_query_or_fragment
        );
    }

    #[test]
    fn refuses_other_schemes_userinfo_and_garbage() {
        assert_eq!(normalize("ftp://a/x"), Err(UriError::Malformed));
        assert_eq!(normalize("/relative"), Err(UriError::Malformed));
        assert_eq!(normalize("https://u:p@a.example/"), Err(UriError::Userinfo));
        assert_eq!(
            normalize("https://a.example/%zz"),
            Err(UriError::InvalidComponent)
        );
        assert_eq!(
            normalize("https://a.example:99999/"),
            Err(UriError::InvalidComponent)
        );
        assert_eq!(
            normalize("https://a.example/ x"),
            Err(UriError::InvalidComponent)
        );
        assert_eq!(normalize("https:///x"), Err(UriError::Malformed));
    }
}
