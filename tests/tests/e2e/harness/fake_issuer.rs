//! A fake issuer on a local port: scripted answers by path (JSON documents,
//! redirects, a connection that never answers) and a count of requests per
//! path — the discovery documents and key sets of the IdP tests.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake answers for one path.
#[derive(Clone)]
pub(crate) enum Reply {
    /// 200 with the JSON document and no caching header.
    Json(Value),
    /// 200 with the JSON document, `cache-control: public, max-age=300`.
    Cached(Value),
    /// 302 to the URL.
    Redirect(String),
    /// Accepts the connection and never answers.
    Hang,
}

/// A fake issuer answering by path (the query left off); any other path is a 404.
pub(crate) struct FakeIssuer {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeIssuer {
    /// Serves `routes(base)` on a fresh port, one thread per connection.
    pub(crate) fn start(routes: impl FnOnce(&str) -> Vec<(String, Reply)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let routes: Arc<HashMap<String, Reply>> = Arc::new(routes(&base).into_iter().collect());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let routes = Arc::clone(&routes);
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .split('?')
                        .next()
                        .unwrap_or("/")
                        .to_owned();
                    *counter.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                    let json = |v: &Value, caching: &str| {
                        let body = v.to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{caching}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let resp = match routes.get(&path) {
                        Some(Reply::Json(v)) => json(v, ""),
                        Some(Reply::Cached(v)) => json(v, "cache-control: public, max-age=300\r\n"),
                        Some(Reply::Redirect(to)) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        ),
                        Some(Reply::Hang) => {
                            std::thread::sleep(Duration::from_secs(120));
                            return;
                        }
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned(),
                    };
                    let _ = stream.write_all(resp.as_bytes());
                });
            }
        });
        Self { base, hits }
    }

    /// Serves fixed JSON documents (`docs(base)`: path → body), cacheable
    /// for 300 s.
    pub(crate) fn serving(docs: impl FnOnce(&str) -> Vec<(String, Value)>) -> Self {
        Self::start(|base| {
            docs(base)
                .into_iter()
                .map(|(path, doc)| (path, Reply::Cached(doc)))
                .collect()
        })
    }

    /// Requests seen for `path`.
    pub(crate) fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}
