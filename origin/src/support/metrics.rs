//! Prometheus metrics, rendered in the text exposition format at `/metrics`:
//! tokens issued by grant and algorithm, errors by kind, request latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: BTreeMap<(String, String, String), u64>,
    errors: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
    /// The last revocation document built: live revocations and entries carried.
    revocations: Option<(usize, usize)>,
}

/// The origin's counters and histograms.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// One token issued.
    pub fn token_issued(&self, grant: &str, alg: &str, token_type: &str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.tokens
                .entry((grant.to_owned(), alg.to_owned(), token_type.to_owned()))
                .or_default() += 1;
        }
    }

    /// One request answered, on `route`, in `secs`, with `error` if refused.
    pub fn request(&self, route: &str, secs: f64, error: Option<&str>) {
        if let Ok(mut m) = self.inner.lock() {
            let h = m.latency.entry(route.to_owned()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    if let Some(c) = h.counts.get_mut(i) {
                        *c += 1;
                    }
                }
            }
            h.sum += secs;
            h.count += 1;
            if let Some(kind) = error {
                *m.errors
                    .entry((route.to_owned(), kind.to_owned()))
                    .or_default() += 1;
            }
        }
    }

    /// The last revocation document built carried `carried` of `live`
    /// revocations (fewer only over the document's entry cap).
    pub fn revocation_document(&self, live: usize, carried: usize) {
        if let Ok(mut m) = self.inner.lock() {
            m.revocations = Some((live, carried));
        }
    }

    /// The text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP gatehouse_tokens_issued_total Access tokens issued.\n# TYPE gatehouse_tokens_issued_total counter\n");
        for ((grant, alg, tt), n) in &m.tokens {
            let _ = writeln!(out, "gatehouse_tokens_issued_total{{grant=\"{grant}\",alg=\"{alg}\",token_type=\"{tt}\"}} {n}");
        }
        out.push_str("# HELP gatehouse_errors_total Refused or failed requests by error kind.\n# TYPE gatehouse_errors_total counter\n");
        for ((route, kind), n) in &m.errors {
            let _ = writeln!(
                out,
                "gatehouse_errors_total{{route=\"{route}\",kind=\"{kind}\"}} {n}"
            );
        }
        if let Some((live, carried)) = m.revocations {
            let _ = writeln!(
                out,
                "# HELP gatehouse_revocations_live Live revocations when the last document was built.\n# TYPE gatehouse_revocations_live gauge\ngatehouse_revocations_live {live}\n\
                 # HELP gatehouse_revocations_left_out Live revocations the last document could not carry (over its entry cap).\n# TYPE gatehouse_revocations_left_out gauge\ngatehouse_revocations_left_out {}",
                live.saturating_sub(carried)
            );
        }
        out.push_str("# HELP gatehouse_request_duration_seconds Request latency.\n# TYPE gatehouse_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            for (bound, c) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(out, "gatehouse_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {c}");
            }
            let _ = writeln!(
                out,
                "gatehouse_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "gatehouse_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "gatehouse_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out
    }
}
