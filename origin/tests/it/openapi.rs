//! The OpenAPI document served at `/openapi.json`, checked against the
//! router both ways, against real answers of the app (validated with the
//! `jsonschema` crate against the document's own schemas), and for the
//! structure OpenAPI 3.1 requires (every `$ref` resolves, every path
//! parameter declared).

use crate::support::*;
use axum::body::Body;
use axum::extract::{MatchedPath, Request as AxumRequest};
use axum::http::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use gatehouse_origin::domain::exchange::{ACCESS_TOKEN_TYPE, GRANT};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;

async fn document(state: &gatehouse_origin::domain::state::AppState) -> Value {
    let (s, h, doc) = send(
        state,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    doc
}

/// Copies the route the router matched into the response.
async fn record_match(req: AxumRequest, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(m);
    }
    resp
}

/// The status of `method uri` and the route template it matched, if any.
async fn matched(
    state: &gatehouse_origin::domain::state::AppState,
    method: &str,
    uri: &str,
) -> (u16, Option<String>) {
    let app =
        gatehouse_origin::http::router(state.clone()).layer(middleware::from_fn(record_match));
    let resp = app
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let route = resp
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    (resp.status().as_u16(), route)
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// Every documented operation reaches a handler of that path and method
/// (not the 404 fallback, not 405); on a documented path, every method the
/// document does not name is answered 405.
#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method() {
    let state = sqlite_state().await;
    let doc = document(&state).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (path, item) in paths {
        let concrete = path.replace('{', "x").replace('}', "");
        for method in METHODS {
            let (s, route) = matched(&state, &method.to_uppercase(), &concrete).await;
            if item.get(method).is_some() {
                assert_eq!(route.as_deref(), Some(path.as_str()), "{method} {path}");
                assert_ne!(s, 405, "{method} {path}");
            } else {
                assert_eq!(s, 405, "{method} {path} is served but not documented");
            }
        }
    }
}

/// The document covers what the origin serves (the routes before it was
/// generated, and nothing was dropped on the way).
#[tokio::test]
async fn the_document_names_every_operation_of_the_origin() {
    let state = sqlite_state().await;
    let doc = document(&state).await;
    let mut documented: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| format!("{m} {p}"))
        })
        .collect();
    documented.sort();
    let mut expected = vec![
        "post /token",
        "get /authorize",
        "post /authorize/login",
        "post /authorize/consent",
        "post /par",
        "post /introspect",
        "post /revoke",
        "get /.well-known/jwks.json",
        "get /.well-known/oauth-authorization-server",
        "get /.well-known/openid-configuration",
        "get /openapi.json",
        "get /metrics",
        "get /healthz",
        "get /readyz",
        "get /admin/clients",
        "post /admin/clients",
        "get /admin/clients/{client_id}",
        "delete /admin/clients/{client_id}",
        "post /admin/clients/{client_id}/rotate-secret",
        "get /admin/keys",
        "post /admin/keys/rotate",
        "post /admin/keys/{kid}/retire",
        "get /admin/revocations",
        "post /admin/revocations",
        "get /admin/revocations/status",
        "get /admin/audit",
        "get /logout",
        "post /logout",
        "get /admin/users/{username}/sessions",
        "delete /admin/users/{username}/sessions/{sid}",
        "get /userinfo",
        "post /userinfo",
        "get /admin/users",
        "post /admin/users",
        "patch /admin/users/{username}",
        "delete /admin/users/{username}",
    ];
    expected.sort_unstable();
    assert_eq!(documented, expected);
}

/// The other direction: no route reaches the router except through the
/// document. The router is built only from `utoipa_axum::routes!` (each
/// handler's `#[utoipa::path]` is both its route and its documentation);
/// a plain axum `.route(…)`, `.route_service(…)`, `.nest_service(…)` or
/// `Router::new()` anywhere in the origin's source would add a route the
/// document does not know.
#[test]
fn routes_are_added_only_through_the_document() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let plain_router =
                    code.contains("Router::new()") && !code.contains("OpenApiRouter::new()");
                if code.contains(".route(")
                    || code.contains(".route_service(")
                    || code.contains(".nest_service(")
                    || plain_router
                {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// Resolves a local `$ref` (`#/a/b`) in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// OpenAPI 3.1 (spec.openapis.org/oas/v3.1.0): `openapi` 3.x, `info` with
/// `title` and `version`, operations with `responses`, every path template
/// parameter declared `in: path, required: true`, every `$ref` resolving,
/// every security requirement naming a declared scheme.
#[tokio::test]
async fn the_document_is_well_formed_openapi_3() {
    let state = sqlite_state().await;
    let doc = document(&state).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in &all_refs {
        assert!(resolve(&doc, r).is_some(), "unresolved $ref {r}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        let template: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(n, _)| n))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, r) in responses {
                assert!(
                    status == "default" || status.parse::<u16>().is_ok(),
                    "{status}"
                );
                assert!(r["description"].is_string(), "{method} {path} {status}");
            }
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .into_iter()
                .chain(item["parameters"].as_array())
                .flatten()
                .collect();
            for name in &template {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == *name && p["in"] == "path" && p["required"] == true),
                    "{method} {path}: path parameter {name} undeclared"
                );
            }
            for req in op["security"].as_array().into_iter().flatten() {
                for scheme in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(scheme), "{method} {path}: {scheme}");
                }
            }
        }
    }
}

/// What the issue found wrong in the hand-written document: client
/// credentials are form fields (RFC 6749 §2.3.1), never a query parameter
/// (a secret in a URL reaches access logs); private_key_jwt (RFC 7523 §2.2)
/// and the DPoP header (RFC 9449 §4) are described; the token response names
/// `refresh_token` and `issued_token_type`; the JWKS has a schema.
#[tokio::test]
async fn client_authentication_dpop_and_token_response_are_described() {
    let state = sqlite_state().await;
    let doc = document(&state).await;
    for scheme in doc["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .values()
    {
        assert_ne!(scheme["in"], "query", "{scheme}");
    }
    let basic = &doc["components"]["securitySchemes"]["client_secret_basic"];
    assert_eq!(
        (&basic["type"], &basic["scheme"]),
        (&json!("http"), &json!("basic"))
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    for path in ["/token", "/introspect", "/revoke"] {
        let body = &doc["paths"][path]["post"]["requestBody"]["content"]
            ["application/x-www-form-urlencoded"]["schema"];
        let body = body
            .get("$ref")
            .and_then(|r| resolve(&doc, r.as_str().unwrap()))
            .unwrap_or(body);
        for field in [
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
        ] {
            assert!(body["properties"][field].is_object(), "{path}: {field}");
        }
    }
    let params = doc["paths"]["/token"]["post"]["parameters"]
        .as_array()
        .unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "DPoP" && p["in"] == "header"),
        "{params:?}"
    );
    let token = resolve(&doc, "#/components/schemas/TokenResponse").unwrap();
    for field in ["refresh_token", "issued_token_type"] {
        assert!(token["properties"][field].is_object(), "{field}");
    }
    let jwks = &doc["paths"]["/.well-known/jwks.json"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert!(jwks.get("$ref").is_some(), "{jwks}");
}

/// Every object schema that lists its properties is closed, for these
/// tests only: an answer member the document does not name fails (the
/// document itself stays open to additions, as RFC 6749 §5.1 allows).
fn closed(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("properties").is_some_and(Value::is_object)
                && !m.contains_key("additionalProperties")
            {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            m.values_mut().for_each(closed);
        }
        Value::Array(a) => a.iter_mut().for_each(closed),
        _ => {}
    }
}

/// Validates `body`, the `status` answer of `method path` with media type
/// `application/json`, against its schema in `doc`.
fn check(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no JSON schema"
    );
    // A described shape, not a bare `{"type": "object"}` that any body meets.
    let shape = schema
        .get("$ref")
        .and_then(|r| resolve(doc, r.as_str().unwrap()))
        .unwrap_or(schema);
    assert!(
        shape["properties"].is_object(),
        "{method} {path} {status}: the schema names no members: {shape}"
    );
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"].clone(),
        "allOf": [schema.clone()],
    });
    closed(&mut root);
    let validator = jsonschema::draft202012::new(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    // The body as shown on failure, without its credentials.
    let mut shown = body.clone();
    if let Some(m) = shown.as_object_mut() {
        for secret in ["access_token", "refresh_token", "client_secret"] {
            if let Some(v) = m.get_mut(secret) {
                *v = json!("[redacted]");
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:#?}\n{shown:#}"
    );
}

async fn call(
    state: &gatehouse_origin::domain::state::AppState,
    req: Request<Body>,
) -> (u16, Value) {
    let resp = gatehouse_origin::http::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn admin(method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap()
}

/// Real answers of the app match the schemas the document gives them.
#[tokio::test]
async fn real_answers_match_their_schemas() {
    let state = sqlite_state().await;
    let doc = document(&state).await;
    let c = register(&state, "read", false).await;
    let rs = register_resource_server(&state, AUD).await;

    let (s, _, tok) = token(&state, &c, "grant_type=client_credentials&scope=read").await;
    assert_eq!(s, 200);
    check(&doc, "post", "/token", 200, &tok);
    let (s, _, err) = token(&state, &c, "grant_type=password").await;
    assert_eq!(s, 400);
    check(&doc, "post", "/token", 400, &err);
    let bad = Registered {
        id: c.id.clone(),
        secret: "wrong".into(),
    };
    let (s, _, err) = token(&state, &bad, "grant_type=client_credentials").await;
    assert_eq!(s, 401);
    check(&doc, "post", "/token", 401, &err);

    // RFC 8693: the answer names issued_token_type.
    let (gw, gw_secret) = gatehouse_origin::domain::clients::create(
        &state.db,
        &gatehouse_origin::domain::clients::NewClient {
            name: "gateway".into(),
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec![GRANT.into()],
            serves: vec![AUD.into()],
            ..Default::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    let gw = Registered::new(gw, gw_secret);
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT)
        .append_pair("subject_token", tok["access_token"].as_str().unwrap())
        .append_pair("subject_token_type", ACCESS_TOKEN_TYPE)
        .finish();
    let (s, _, exchanged) = token(&state, &gw, &body).await;
    assert_eq!(s, 200, "{}", exchanged["error"]);
    assert!(exchanged["issued_token_type"].is_string());
    check(&doc, "post", "/token", 200, &exchanged);

    for raw in [tok["access_token"].as_str().unwrap(), "not-a-token"] {
        let body = format!("token={raw}");
        let (s, active) = call(
            &state,
            form_post("/introspect", Some(&basic(&rs.id, &rs.secret)), &body)
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        check(&doc, "post", "/introspect", 200, &active);
    }

    let (s, jwks) = call(
        &state,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    check(&doc, "get", "/.well-known/jwks.json", 200, &jwks);
    let (s, meta) = call(
        &state,
        Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    check(
        &doc,
        "get",
        "/.well-known/oauth-authorization-server",
        200,
        &meta,
    );
    let (s, oidc) = call(
        &state,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    check(&doc, "get", "/.well-known/openid-configuration", 200, &oidc);
    let (s, ready) = call(&state, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(s, 200);
    check(&doc, "get", "/readyz", 200, &ready);

    // The admin API, every JSON answer.
    let (s, created) = call(
        &state,
        admin(
            "POST",
            "/admin/clients",
            Some(json!({"name": "n", "scope": "read", "grant_types": ["client_credentials"]})),
        ),
    )
    .await;
    assert_eq!(s, 201);
    check(&doc, "post", "/admin/clients", 201, &created);
    let id = created["client_id"].as_str().unwrap().to_owned();
    crate::support::create_user(&state.db, "alice", crate::support::now()).await;
    let steps: Vec<(&str, String, &str, u16, Option<Value>)> = vec![
        ("get", "/admin/clients".into(), "/admin/clients", 200, None),
        (
            "get",
            format!("/admin/clients/{id}"),
            "/admin/clients/{client_id}",
            200,
            None,
        ),
        (
            "post",
            format!("/admin/clients/{id}/rotate-secret?grace=60"),
            "/admin/clients/{client_id}/rotate-secret",
            200,
            None,
        ),
        ("get", "/admin/keys".into(), "/admin/keys", 200, None),
        (
            "post",
            "/admin/revocations".into(),
            "/admin/revocations",
            201,
            Some(json!({"kind": "sub", "value": "someone"})),
        ),
        (
            "get",
            "/admin/revocations".into(),
            "/admin/revocations",
            200,
            None,
        ),
        (
            "get",
            "/admin/revocations/status".into(),
            "/admin/revocations/status",
            200,
            None,
        ),
        ("get", "/admin/audit".into(), "/admin/audit", 200, None),
        (
            "get",
            "/admin/users/alice/sessions".into(),
            "/admin/users/{username}/sessions",
            200,
            None,
        ),
        (
            "delete",
            "/admin/users/alice/sessions/nope".into(),
            "/admin/users/{username}/sessions/{sid}",
            404,
            None,
        ),
        (
            "post",
            "/admin/keys/rotate".into(),
            "/admin/keys/rotate",
            200,
            None,
        ),
        (
            "delete",
            format!("/admin/clients/{id}"),
            "/admin/clients/{client_id}",
            200,
            None,
        ),
        (
            "get",
            "/admin/clients/nope".into(),
            "/admin/clients/{client_id}",
            404,
            None,
        ),
    ];
    for (method, uri, path, status, body) in steps {
        let (s, answer) = call(&state, admin(&method.to_uppercase(), &uri, body)).await;
        assert_eq!(s, status, "{method} {uri}: {answer}");
        check(&doc, method, path, status, &answer);
    }
    let (_, keys) = call(&state, admin("GET", "/admin/keys", None)).await;
    let kid = keys["keys"][0]["kid"].as_str().unwrap().to_owned();
    let (s, retired) = call(
        &state,
        admin("POST", &format!("/admin/keys/{kid}/retire"), None),
    )
    .await;
    assert_eq!(s, 200, "{retired}");
    check(&doc, "post", "/admin/keys/{kid}/retire", 200, &retired);
    let (s, err) = call(
        &state,
        Request::get("/admin/keys").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    check(&doc, "get", "/admin/keys", 401, &err);
}

/// Issue 19: the UserInfo answers (claims, and the RFC 6750 refusals) and
/// the admin API's user answers match their schemas.
#[tokio::test]
async fn userinfo_and_user_answers_match_their_schemas() {
    use gatehouse_origin::domain::grants::{issue_code, CodeGrant};
    let state = sqlite_state().await;
    let doc = document(&state).await;
    let (s, created) = call(
        &state,
        admin(
            "POST",
            "/admin/users",
            Some(
                json!({"username": "alice", "password": "correct horse battery",
                        "name": "Alice", "email": "alice@example.com", "email_verified": true}),
            ),
        ),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    check(&doc, "post", "/admin/users", 201, &created);
    let steps: Vec<(&str, &str, &str, u16, Option<Value>)> = vec![
        ("get", "/admin/users", "/admin/users", 200, None),
        (
            "patch",
            "/admin/users/alice",
            "/admin/users/{username}",
            200,
            Some(json!({"name": "Alice L."})),
        ),
        (
            "patch",
            "/admin/users/alice",
            "/admin/users/{username}",
            400,
            Some(json!({"email": "nope"})),
        ),
        (
            "patch",
            "/admin/users/nobody",
            "/admin/users/{username}",
            404,
            Some(json!({"name": "N"})),
        ),
        (
            "post",
            "/admin/users",
            "/admin/users",
            409,
            Some(json!({"username": "alice", "password": "correct horse battery"})),
        ),
    ];
    for (method, uri, path, status, body) in steps {
        let (s, answer) = call(&state, admin(&method.to_uppercase(), uri, body)).await;
        assert_eq!(s, status, "{method} {uri}: {answer}");
        check(&doc, method, path, status, &answer);
    }

    let (web, secret) = gatehouse_origin::domain::clients::create(
        &state.db,
        &gatehouse_origin::domain::clients::NewClient {
            name: "rp".into(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec![CB.into()],
            ..Default::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    let web = Registered::new(web, secret);
    let mut tokens = Vec::new();
    for scopes in ["openid profile email", "profile"] {
        let code = issue_code(
            &state.db,
            &CodeGrant {
                client_id: web.id.clone(),
                user_id: created["user_id"].as_str().unwrap().to_owned(),
                redirect_uri: CB.into(),
                scopes: scopes.split(' ').map(str::to_owned).collect(),
                audience: AUD.into(),
                code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                dpop_jkt: None,
                session: gatehouse_origin::domain::grants::ApprovingSession {
                    sid: crate::support::live_session(
                        &state.db,
                        created["user_id"].as_str().unwrap(),
                    )
                    .await,
                    auth_time: 1,
                    amr: "pwd".into(),
                },
                nonce: None,
            },
            crate::support::now(),
        )
        .await
        .unwrap();
        let body = format!(
            "grant_type=authorization_code&code={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
             &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            code.expose()
        );
        let (s, _, t) = token(&state, &web, &body).await;
        assert_eq!(s, 200, "{t}");
        tokens.push(t["access_token"].as_str().unwrap().to_owned());
    }
    let cases = [
        (Some(tokens[0].as_str()), None, 200),
        (Some(tokens[1].as_str()), None, 403),
        (Some("not-a-token"), None, 401),
        (None, None, 401),
        (Some(tokens[0].as_str()), Some("?access_token=x"), 400),
    ];
    for method in ["get", "post"] {
        for (tok, query, status) in cases {
            let mut req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(format!("/userinfo{}", query.unwrap_or_default()));
            if let Some(t) = tok {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let (s, answer) = call(&state, req.body(Body::empty()).unwrap()).await;
            assert_eq!(s, status, "{method} {answer}");
            check(&doc, method, "/userinfo", status, &answer);
        }
    }
    let (s, deleted) = call(&state, admin("DELETE", "/admin/users/alice", None)).await;
    assert_eq!(s, 200, "{deleted}");
    check(&doc, "delete", "/admin/users/{username}", 200, &deleted);
}

/// The closed lists of the document are the server's: grant types
/// (`GrantType::ALL`) and readiness reasons (`http::probe::NotReady`).
#[tokio::test]
async fn enumerations_are_the_servers() {
    use gatehouse_origin::domain::grant_type::GrantType;
    use gatehouse_origin::http::probe::NotReady;
    let state = sqlite_state().await;
    let doc = document(&state).await;
    let listed = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no enum"))
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let mut grants: Vec<String> = GrantType::ALL
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    grants.sort();
    assert_eq!(listed("GrantType"), grants);
    let mut reasons: Vec<String> = [NotReady::DatabaseUnavailable, NotReady::NoSigningKey]
        .iter()
        .map(|r| r.reason().to_owned())
        .collect();
    reasons.sort();
    assert_eq!(listed("NotReadyReason"), reasons);
}

/// The admin refusals are one shared set (`http::admin::AdminRefusals`,
/// `JsonBodyRefusals`) that every admin operation names once: each has the
/// 401 and 429 of the token check, JSON bodies their 400 and 415, and an
/// operation that looks a resource up keeps its own 404 over the set's.
#[tokio::test]
async fn every_admin_operation_documents_the_shared_refusals() {
    let state = sqlite_state().await;
    let doc = document(&state).await;
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/admin") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let r = &op["responses"];
            seen += 1;
            for status in ["401", "404", "429"] {
                assert!(
                    r[status]["description"].is_string(),
                    "{method} {path}: no {status}"
                );
            }
            assert!(
                r["401"]["description"]
                    .as_str()
                    .unwrap()
                    .contains("admin token"),
                "{method} {path}"
            );
            if op.get("requestBody").is_some() {
                assert!(
                    r["400"].is_object() && r["415"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(seen >= 12, "{seen} admin operations");
    let not_found = |path: &str, method: &str| {
        doc["paths"][path][method]["responses"]["404"]["description"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(not_found("/admin/clients/{client_id}", "get").starts_with("No such client"));
    assert!(not_found("/admin/keys/{kid}/retire", "post").starts_with("No such key"));
    assert_eq!(
        not_found("/admin/clients", "get"),
        "No admin token is configured"
    );
}
