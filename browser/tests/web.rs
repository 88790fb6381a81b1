//! The client in headless Chromium: real WebCrypto, IndexedDB and `Response`s.
#![cfg(target_arch = "wasm32")]
// wasm_bindgen_test functions are tests, but clippy.toml's in-test allowances only see #[test].
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use gatehouse_browser::DpopClient;
use gatehouse_common::b64;
use gatehouse_common::dpop::{
    BoundAccessToken, DpopError, DpopPolicy, DpopProof, DpopRequest, UntrustedDpopProof,
};
use gatehouse_common::nonce::NonceIssuer;
use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
use gatehouse_common::UnixTime;
use js_sys::{Function, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{Request, Response, ResponseInit};

wasm_bindgen_test_configure!(run_in_browser);

fn unique_app_id(tag: &str) -> String {
    format!("test-{tag}-{}", js_sys::Math::random())
}

fn now() -> UnixTime {
    UnixTime((js_sys::Date::now() / 1000.0) as i64)
}

fn verify(proof: &str, request: &DpopRequest<'_>, at: UnixTime) -> Result<DpopProof, DpopError> {
    let policy = DpopPolicy::default();
    let u = UntrustedDpopProof::parse_one(proof, &policy)?;
    let ok = RustCrypto.verify(u.jwk(), u.alg(), u.signing_input(), u.signature());
    u.accept(ok, &policy, request, at)
}

fn claims(proof: &str) -> serde_json::Value {
    let part = proof.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64::decode(part).unwrap()).unwrap()
}

#[wasm_bindgen_test]
async fn private_key_is_not_extractable() {
    let app = unique_app_id("extract");
    let client = DpopClient::load_or_create_key(&app).await.unwrap();
    let key = client.private_key();
    assert!(!key.extractable());
    let subtle = web_sys::window().unwrap().crypto().unwrap().subtle();
    let export = subtle.export_key("jwk", &key).unwrap();
    assert!(
        JsFuture::from(export).await.is_err(),
        "private key exported"
    );
    let jwk = client.public_jwk().unwrap();
    let mut members: Vec<String> = js_sys::Object::keys(jwk.unchecked_ref::<js_sys::Object>())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    members.sort();
    assert_eq!(members, ["crv", "kty", "x", "y"]);
    DpopClient::delete_key(&app).await.unwrap();
}

#[wasm_bindgen_test]
async fn key_persists_across_loads_until_deleted() {
    let app = unique_app_id("persist");
    let first = DpopClient::load_or_create_key(&app).await.unwrap();
    let second = DpopClient::load_or_create_key(&app).await.unwrap();
    assert_eq!(first.jkt(), second.jkt());
    assert_eq!(first.jkt().len(), 43);
    // Another app id is another key.
    let other_app = unique_app_id("persist-other");
    let other = DpopClient::load_or_create_key(&other_app).await.unwrap();
    assert_ne!(first.jkt(), other.jkt());
    // The JS entry point sees the same stored key.
    let via_js: DpopClient = JsFuture::from(DpopClient::load_or_create(app.clone()))
        .await
        .map(|v| {
            // `DpopClient` crosses JS as a wrapper object; read its jkt through JS.
            let jkt = Reflect::get(&v, &"jkt".into()).unwrap();
            let jkt: Function = jkt.unchecked_into();
            assert_eq!(jkt.call0(&v).unwrap().as_string().unwrap(), first.jkt());
            second.clone()
        })
        .unwrap();
    assert_eq!(via_js.jkt(), first.jkt());
    DpopClient::delete_key(&app).await.unwrap();
    let fresh = DpopClient::load_or_create_key(&app).await.unwrap();
    assert_ne!(fresh.jkt(), first.jkt());
    DpopClient::delete_key(&app).await.unwrap();
    DpopClient::delete_key(&other_app).await.unwrap();
}

#[wasm_bindgen_test]
async fn proof_is_valid_under_common_with_ath_and_nonce() {
    let app = unique_app_id("proof");
    let client = DpopClient::load_or_create_key(&app).await.unwrap();
    let issuer = NonceIssuer::with_defaults(&[42u8; 32]).unwrap();
    let nonce = issuer.issue(now());
    let token = "eyJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJhIn0.c2ln";
    let url = "https://api.example.com/orders/7?expand=items#top";
    let proof = client
        .create_proof("PATCH", url, Some(token), Some(&nonce))
        .await
        .unwrap();
    let c = claims(&proof);
    assert_eq!(c["htu"], "https://api.example.com/orders/7");
    assert_eq!(c["htm"], "PATCH");
    assert_eq!(c["ath"], gatehouse_common::dpop::ath(token));
    let jkt = client.jkt();
    let request = DpopRequest {
        method: "PATCH",
        uri: url,
        access_token: Some(BoundAccessToken {
            raw: token,
            cnf_jkt: Some(&jkt),
        }),
        nonces: Some(&issuer),
    };
    let iat = UnixTime(c["iat"].as_i64().unwrap());
    let accepted = verify(&proof, &request, iat).unwrap();
    assert_eq!(accepted.jkt, jkt);
    assert_eq!(accepted.nonce.as_deref(), Some(nonce.as_str()));
    // Bound to this token, this key and this method.
    let other_token = DpopRequest {
        access_token: Some(BoundAccessToken {
            raw: "other.token.x",
            cnf_jkt: Some(&jkt),
        }),
        ..request
    };
    assert_eq!(
        verify(&proof, &other_token, iat),
        Err(DpopError::AthMismatch)
    );
    let other_key = DpopRequest {
        access_token: Some(BoundAccessToken {
            raw: token,
            cnf_jkt: Some("not-this-key"),
        }),
        ..request
    };
    assert_eq!(verify(&proof, &other_key, iat), Err(DpopError::JktMismatch));
    // Two proofs never share a jti.
    let again = client
        .create_proof("PATCH", url, Some(token), Some(&nonce))
        .await
        .unwrap();
    assert_ne!(claims(&again)["jti"], c["jti"]);
    // The JS entry point makes proofs too (no token, no nonce).
    let js_proof = JsFuture::from(client.proof("GET".into(), url.into(), None, None))
        .await
        .unwrap()
        .as_string()
        .unwrap();
    let plain = DpopRequest {
        method: "GET",
        uri: url,
        access_token: None,
        nonces: None,
    };
    let c2 = claims(&js_proof);
    assert!(c2.get("ath").is_none() && c2.get("nonce").is_none());
    verify(&js_proof, &plain, UnixTime(c2["iat"].as_i64().unwrap())).unwrap();
    DpopClient::delete_key(&app).await.unwrap();
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    let init = ResponseInit::new();
    init.set_status(status);
    let h = web_sys::Headers::new().unwrap();
    for (k, v) in headers {
        h.set(k, v).unwrap();
    }
    init.set_headers_headers(&h);
    Response::new_with_opt_str_and_init(Some(body), &init).unwrap()
}

/// A responder that plays a nonce-requiring server: it verifies each proof
/// with `gatehouse_common` and refuses until the proof carries its nonce.
fn responder(
    issuer: Rc<NonceIssuer>,
    token_endpoint: bool,
    seen: Rc<RefCell<Vec<DpopProof>>>,
    calls: Rc<RefCell<u32>>,
) -> Function {
    let f = Closure::<dyn FnMut(Request) -> Promise>::new(move |req: Request| {
        *calls.borrow_mut() += 1;
        let proof = req.headers().get("DPoP").unwrap().unwrap();
        let auth = req.headers().get("Authorization").unwrap();
        let token = auth.as_deref().and_then(|a| a.strip_prefix("DPoP "));
        let request = DpopRequest {
            method: &req.method(),
            uri: &req.url(),
            access_token: None,
            nonces: Some(&issuer),
        };
        let fresh = issuer.issue(now());
        let resp = match verify(&proof, &request, now()) {
            Ok(p) => {
                if let Some(t) = token {
                    assert_eq!(claims(&proof)["ath"], gatehouse_common::dpop::ath(t));
                }
                seen.borrow_mut().push(p);
                response(200, &[("DPoP-Nonce", &fresh)], "ok")
            }
            Err(DpopError::NonceRequired | DpopError::NonceInvalid) => {
                if token_endpoint {
                    response(
                        400,
                        &[("DPoP-Nonce", &fresh)],
                        r#"{"error":"use_dpop_nonce","error_description":"nonce required"}"#,
                    )
                } else {
                    response(
                        401,
                        &[
                            ("DPoP-Nonce", &fresh),
                            (
                                "WWW-Authenticate",
                                r#"DPoP algs="ES256", error="use_dpop_nonce", error_description="nonce required""#,
                            ),
                        ],
                        "",
                    )
                }
            }
            Err(e) => panic!("proof refused: {e}"),
        };
        Promise::resolve(&resp).unchecked_into::<Promise>()
    });
    f.into_js_value().unchecked_into()
}

#[wasm_bindgen_test]
async fn fetch_retries_once_with_the_servers_nonce_and_remembers_it() {
    let app = unique_app_id("fetch");
    let client = DpopClient::load_or_create_key(&app).await.unwrap();
    let issuer = Rc::new(NonceIssuer::with_defaults(&[9u8; 32]).unwrap());
    for token_endpoint in [false, true] {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let calls = Rc::new(RefCell::new(0));
        let transport = responder(issuer.clone(), token_endpoint, seen.clone(), calls.clone());
        let base = if token_endpoint {
            "https://as.example/token"
        } else {
            "https://rs.example/api/me"
        };
        let token = (!token_endpoint).then_some("at.value.sig");
        let resp = client
            .fetch_via(
                &transport,
                &format!("{base}?q=1"),
                "POST",
                token,
                Some("a=b"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(*calls.borrow(), 2, "one refusal, one retry");
        assert_eq!(seen.borrow()[0].htu, base);
        // The nonce is remembered per origin: the next request needs no retry.
        assert!(client.nonce_for(base.into()).is_some());
        let resp = client
            .fetch_via(&transport, base, "POST", token, None, None)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(*calls.borrow(), 3);
    }
    DpopClient::delete_key(&app).await.unwrap();
}

#[wasm_bindgen_test]
async fn fetch_does_not_loop_when_the_nonce_keeps_failing() {
    let app = unique_app_id("loop");
    let client = DpopClient::load_or_create_key(&app).await.unwrap();
    let calls = Rc::new(RefCell::new(0u32));
    let c = calls.clone();
    let f = Closure::<dyn FnMut(Request) -> Promise>::new(move |_req: Request| {
        *c.borrow_mut() += 1;
        let nonce = format!("n{}", c.borrow());
        Promise::resolve(&response(
            401,
            &[
                ("DPoP-Nonce", &nonce),
                ("WWW-Authenticate", r#"DPoP error="use_dpop_nonce""#),
            ],
            "",
        ))
        .unchecked_into::<Promise>()
    });
    let transport: Function = f.into_js_value().unchecked_into();
    let resp = client
        .fetch_via(&transport, "https://rs.example/x", "GET", None, None, None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(*calls.borrow(), 2);
    assert_eq!(
        client.nonce_for("https://rs.example/".into()).as_deref(),
        Some("n2")
    );
    DpopClient::delete_key(&app).await.unwrap();
}
