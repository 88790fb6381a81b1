//! Pure decisions behind the fast revocation path (`REVOCATION_REPLICAS`,
//! tested natively): which regional replicas exist, which one an isolate
//! reads (from `request.cf`), when it may read it again, what a replica
//! takes, how a document is split for Durable Object storage, and how the
//! ingest store backs off when a replica did not acknowledge.

/// Cloudflare's Durable Object location hints, the replicas' names.
pub const REGIONS: [&str; 9] = [
    "wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me",
];

/// Why `REVOCATION_REPLICAS` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRegions;

impl std::fmt::Display for BadRegions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "must be off or a comma-separated list of wnam, enam, sam, weur, eeur, apac, oc, afr, me",
        )
    }
}

/// The configured replicas: all nine when unset, none for `off`, else the
/// listed location hints (each known, duplicates dropped, order kept; the
/// first is the fallback of last resort).
pub fn parse_regions(value: Option<&str>) -> Result<Vec<&'static str>, BadRegions> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(REGIONS.to_vec());
    };
    if v.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    let mut out: Vec<&'static str> = Vec::new();
    for name in v.split(',').map(str::trim) {
        let known = REGIONS
            .iter()
            .find(|r| r.eq_ignore_ascii_case(name))
            .ok_or(BadRegions)?;
        if !out.contains(known) {
            out.push(known);
        }
    }
    Ok(out)
}

/// Countries of Asia that Cloudflare's `me` hint serves better than `apac`.
const MIDDLE_EAST: [&str; 17] = [
    "AE", "BH", "CY", "EG", "IL", "IQ", "IR", "JO", "KW", "LB", "OM", "PS", "QA", "SA", "SY", "TR",
    "YE",
];

/// The location hint nearest to a colo described by `request.cf`'s
/// `continent`, `country` and `longitude` (`None` when nothing is known).
#[must_use]
pub fn region_for(
    continent: Option<&str>,
    country: Option<&str>,
    longitude: Option<f64>,
) -> Option<&'static str> {
    if country.is_some_and(|c| MIDDLE_EAST.contains(&c)) {
        return Some("me");
    }
    match continent? {
        "NA" => Some(if longitude.is_some_and(|l| l < -100.0) {
            "wnam"
        } else {
            "enam"
        }),
        "SA" => Some("sam"),
        "EU" => Some(if longitude.is_some_and(|l| l >= 20.0) {
            "eeur"
        } else {
            "weur"
        }),
        "AS" => Some("apac"),
        "OC" | "AN" => Some("oc"),
        "AF" => Some("afr"),
        _ => None,
    }
}

/// The isolate's region after a request whose `request.cf` maps to `seen`:
/// the first known region is kept for the isolate's life; a request that
/// tells nothing (no `cf`, Tor's `T1`, an unknown continent) pins nothing,
/// so it cannot send the isolate to the first configured replica for good.
#[must_use]
pub fn settle(pinned: Option<&'static str>, seen: Option<&'static str>) -> Option<&'static str> {
    pinned.or(seen)
}

/// Neighbours tried, in order, when a region has no replica configured.
fn neighbours(region: &str) -> &'static [&'static str] {
    match region {
        "wnam" => &["enam", "sam", "apac"],
        "enam" => &["wnam", "weur", "sam"],
        "sam" => &["enam", "wnam", "afr"],
        "weur" => &["eeur", "enam", "afr"],
        "eeur" => &["weur", "me", "apac"],
        "apac" => &["oc", "me", "wnam"],
        "oc" => &["apac", "wnam"],
        "afr" => &["weur", "me", "eeur"],
        "me" => &["eeur", "apac", "afr"],
        _ => &[],
    }
}

/// The replica an isolate reads: its own region's when configured, else
/// the nearest configured neighbour, else the first configured one; `None`
/// when no replica is configured.
#[must_use]
pub fn pick(natural: Option<&str>, configured: &[&'static str]) -> Option<&'static str> {
    if let Some(region) = natural {
        let wanted = std::iter::once(region).chain(neighbours(region).iter().copied());
        for r in wanted {
            if let Some(found) = configured.iter().find(|c| **c == r) {
                return Some(found);
            }
        }
    }
    configured.first().copied()
}

/// Whether an isolate may start a replica read at `now_ms`: none running,
/// and the last one started at least `refresh_secs` ago (so a flood of
/// requests makes at most one read per `refresh_secs` per isolate).
#[must_use]
pub fn read_due(started_ms: Option<f64>, in_flight: bool, refresh_secs: i64, now_ms: f64) -> bool {
    if in_flight {
        return false;
    }
    #[allow(clippy::cast_precision_loss)] // seconds of configuration, far below 2^52
    let every_ms = refresh_secs as f64 * 1000.0;
    started_ms.is_none_or(|s| now_ms - s >= every_ms || now_ms < s)
}

/// What a replica does with a document offered at `offered`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaPut {
    /// Newer than what it holds: stored.
    Take,
    /// The version it holds: acknowledged again (a retried fan-out).
    Same,
    /// Older than what it holds: refused (409).
    Older,
}

/// A replica's compare-and-set on versions.
#[must_use]
pub fn replica_put(held: Option<u64>, offered: u64) -> ReplicaPut {
    match held {
        None => ReplicaPut::Take,
        Some(h) if offered > h => ReplicaPut::Take,
        Some(h) if offered == h => ReplicaPut::Same,
        Some(_) => ReplicaPut::Older,
    }
}

/// Whether a replica answers "unchanged" (304) to a reader that last
/// received `have` from it: only when that is exactly its version. A
/// replica older than what the reader holds still serves its document, and
/// the reader refuses it (no rollback) and remembers its version.
#[must_use]
pub fn unchanged(have: Option<u64>, held: u64) -> bool {
    have == Some(held)
}

/// Largest chunk of a document per Durable Object storage value (below the
/// 128 KiB value limit of key-value-backed objects).
pub const CHUNK_BYTES: usize = 120 * 1024;

/// `raw` split into chunks of at most [`CHUNK_BYTES`], on character
/// boundaries (compact JWS text is ASCII, so every chunk is full but the last).
#[must_use]
pub fn chunks(raw: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out
}

/// How long the ingest store waits before its `attempt`-th retry of the
/// replicas that have not acknowledged (1 s, doubling, at most 60 s).
#[must_use]
pub fn retry_delay_ms(attempt: u32) -> u64 {
    1000u64.saturating_mul(1u64 << attempt.min(6)).min(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse() {
        assert_eq!(parse_regions(None).unwrap().len(), 9);
        assert_eq!(parse_regions(Some("  ")).unwrap().len(), 9);
        assert!(parse_regions(Some("off")).unwrap().is_empty());
        assert_eq!(
            parse_regions(Some("weur, ENAM,weur")).unwrap(),
            vec!["weur", "enam"]
        );
        assert_eq!(parse_regions(Some("weur,mars")), Err(BadRegions));
        assert_eq!(parse_regions(Some("weur,")), Err(BadRegions));
    }

    #[test]
    fn colos_map_to_the_nearest_hint() {
        assert_eq!(
            region_for(Some("NA"), Some("US"), Some(-122.4)),
            Some("wnam")
        );
        assert_eq!(
            region_for(Some("NA"), Some("US"), Some(-77.0)),
            Some("enam")
        );
        assert_eq!(region_for(Some("NA"), None, None), Some("enam"));
        assert_eq!(region_for(Some("EU"), Some("FR"), Some(2.3)), Some("weur"));
        assert_eq!(region_for(Some("EU"), Some("PL"), Some(21.0)), Some("eeur"));
        assert_eq!(region_for(Some("AS"), Some("AE"), Some(55.3)), Some("me"));
        assert_eq!(region_for(Some("AF"), Some("EG"), Some(31.2)), Some("me"));
        assert_eq!(
            region_for(Some("AS"), Some("JP"), Some(139.7)),
            Some("apac")
        );
        assert_eq!(region_for(Some("OC"), Some("AU"), None), Some("oc"));
        assert_eq!(region_for(Some("SA"), Some("BR"), None), Some("sam"));
        assert_eq!(region_for(Some("AF"), Some("ZA"), None), Some("afr"));
        assert_eq!(region_for(None, None, None), None);
        assert_eq!(region_for(Some("XX"), None, None), None);
    }

    #[test]
    fn a_request_that_tells_nothing_does_not_pin_the_region() {
        // Tor: Cloudflare reports `T1`, no longitude.
        let tor = region_for(Some("T1"), Some("T1"), None);
        assert_eq!(tor, None);
        let after_tor = settle(None, tor);
        assert_eq!(after_tor, None);
        // The next request that tells its region pins it...
        let later = settle(after_tor, region_for(Some("AS"), Some("SG"), Some(103.8)));
        assert_eq!(later, Some("apac"));
        assert_eq!(pick(later, &REGIONS), Some("apac"));
        // ...for good.
        assert_eq!(
            settle(later, region_for(Some("NA"), Some("US"), Some(-122.0))),
            Some("apac")
        );
        assert_eq!(settle(later, None), Some("apac"));
    }

    #[test]
    fn an_unconfigured_region_falls_back_to_a_neighbour_then_the_first() {
        let all = REGIONS.to_vec();
        assert_eq!(pick(Some("oc"), &all), Some("oc"));
        assert_eq!(pick(Some("oc"), &["weur", "apac"]), Some("apac"));
        assert_eq!(pick(Some("oc"), &["weur", "enam"]), Some("weur"));
        assert_eq!(pick(None, &["enam", "weur"]), Some("enam"));
        assert_eq!(pick(Some("weur"), &[]), None);
    }

    #[test]
    fn at_most_one_read_per_period_and_never_two_at_once() {
        assert!(read_due(None, false, 2, 0.0));
        assert!(!read_due(None, true, 2, 0.0));
        assert!(!read_due(Some(1000.0), false, 2, 2999.0));
        assert!(read_due(Some(1000.0), false, 2, 3000.0));
        assert!(!read_due(Some(1000.0), true, 2, 9000.0));
        // A clock that went backwards does not stop reads for good.
        assert!(read_due(Some(5000.0), false, 2, 1000.0));
        assert!(read_due(Some(1000.0), false, 0, 1000.0));
    }

    #[test]
    fn replicas_never_go_back() {
        assert_eq!(replica_put(None, 1), ReplicaPut::Take);
        assert_eq!(replica_put(Some(1), 2), ReplicaPut::Take);
        assert_eq!(replica_put(Some(2), 2), ReplicaPut::Same);
        assert_eq!(replica_put(Some(3), 2), ReplicaPut::Older);
    }

    #[test]
    fn only_the_exact_version_is_unchanged() {
        assert!(unchanged(Some(4), 4));
        assert!(!unchanged(None, 4));
        // A reader ahead of a stale replica still gets its document once
        // (and refuses it as a rollback), then sends that version.
        assert!(!unchanged(Some(9), 4));
        assert!(!unchanged(Some(3), 4));
    }

    #[test]
    fn documents_split_and_join_back() {
        assert!(chunks("").is_empty());
        let big = "a".repeat(CHUNK_BYTES * 2 + 5);
        let parts = chunks(&big);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), big);
        let wide = "é".repeat(CHUNK_BYTES);
        assert_eq!(chunks(&wide).concat(), wide);
        assert!(chunks(&wide).iter().all(|c| c.len() <= CHUNK_BYTES));
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(retry_delay_ms(0), 1000);
        assert_eq!(retry_delay_ms(1), 2000);
        assert_eq!(retry_delay_ms(6), 60_000);
        assert_eq!(retry_delay_ms(40), 60_000);
    }
}
