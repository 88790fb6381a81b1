//! Token exchange attacks through the real origin and edge (issue 16.1):
//! a stolen DPoP-bound token must not become a Bearer token by way of RFC
//! 8693, a client that is not an audience of a token cannot exchange it,
//! and an exchanged token never outlives its subject.

use crate::harness::{http, jwt_claims, ClientCreds, Origin, Stack};
use gatehouse_common::testkit::signer::TestKey;
use serde_json::Value;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn proof(key: &TestKey, method: &str, url: &str, token: Option<&str>) -> String {
    crate::harness::forge::dpop_proof(key, method, url, token, None)
}

/// POST /token as `client` (client_secret_basic), with an optional DPoP proof.
fn token(
    stack: &Stack,
    client: &ClientCreds,
    dpop: Option<&TestKey>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let url = format!("{}/token", stack.origin.url);
    let mut req = http()
        .post(&url)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form);
    if let Some(key) = dpop {
        req = req.header("dpop", proof(key, "POST", &url, None));
    }
    let resp = req.send().expect("POST /token");
    let status = resp.status().as_u16();
    (status, resp.json().expect("token endpoint answers JSON"))
}

fn exchange(
    stack: &Stack,
    client: &ClientCreds,
    dpop: Option<&TestKey>,
    subject: &str,
) -> (u16, Value) {
    token(
        stack,
        client,
        dpop,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
}

fn edge_status(stack: &Stack, auth: &str) -> u16 {
    http()
        .get(format!("{}/orders/1", stack.edge.url))
        .header("authorization", auth)
        .send()
        .expect("edge answers")
        .status()
        .as_u16()
}

/// The attack: a service that holds the exchange grant (and legitimately
/// serves the edge's audience) obtains a user's DPoP-bound token, exchanges
/// it without a proof, and calls the edge with the Bearer result. The
/// origin refuses; with a proof of another key too; the key holder's own
/// exchange stays DPoP-bound, so the edge refuses it as Bearer.
#[test]
fn stolen_dpop_bound_token_cannot_be_exchanged_into_a_bearer_token_for_the_edge() {
    let stack = Stack::start();
    let victim = stack
        .origin
        .create_client("victim", "read", &stack.edge.url, &[]);
    let thief = stack.origin.create_client(
        "thief",
        "read",
        &stack.edge.url,
        &["--grant", EXCHANGE, "--serves", &stack.edge.url],
    );
    let key = TestKey::es256("exchange-attacks-victim-key");
    let (s, t) = token(
        &stack,
        &victim,
        Some(&key),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!((s, t["token_type"].as_str()), (200, Some("DPoP")), "{t}");
    let stolen = t["access_token"].as_str().expect("access_token").to_owned();
    // The stolen token alone is useless at the edge without the key.
    assert_eq!(edge_status(&stack, &format!("Bearer {stolen}")), 401);

    let (s, e) = exchange(&stack, &thief, None, &stolen);
    if s == 200 {
        let laundered = e["access_token"].as_str().unwrap_or_default();
        panic!(
            "a stolen DPoP-bound token was exchanged without its key ({}); the edge answers {} to it as Bearer",
            e["token_type"],
            edge_status(&stack, &format!("Bearer {laundered}"))
        );
    }
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{e}"
    );
    let (s, e) = exchange(&stack, &thief, Some(&TestKey::es256("thief-key")), &stolen);
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{e}"
    );

    // With a proof of the bound key, the result stays bound to it.
    let (s, t) = exchange(&stack, &thief, Some(&key), &stolen);
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let exchanged = t["access_token"].as_str().expect("access_token").to_owned();
    assert_eq!(jwt_claims(&exchanged)["cnf"], jwt_claims(&stolen)["cnf"]);
    assert!(jwt_claims(&exchanged)["exp"].as_i64() <= jwt_claims(&stolen)["exp"].as_i64());
    assert_eq!(edge_status(&stack, &format!("Bearer {exchanged}")), 401);
    let url = format!("{}/orders/1", stack.edge.url);
    let ok = http()
        .get(&url)
        .header("authorization", format!("DPoP {exchanged}"))
        .header("dpop", proof(&key, "GET", &url, Some(&exchanged)))
        .send()
        .expect("edge answers");
    assert_eq!(ok.status().as_u16(), 200, "the key holder can use it");
}

/// A client holding the exchange grant that is not an audience of the token
/// (does not serve the edge) cannot exchange a Bearer token it obtained.
#[test]
fn client_outside_the_tokens_audience_cannot_exchange_it() {
    let stack = Stack::start();
    let victim = stack
        .origin
        .create_client("victim", "read", &stack.edge.url, &[]);
    let outsider =
        stack
            .origin
            .create_client("outsider", "read", &stack.edge.url, &["--grant", EXCHANGE]);
    let stolen = stack.origin.client_credentials(&victim, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let (s, e) = exchange(&stack, &outsider, None, &stolen);
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    let audit = stack.origin.cli(&["audit", "--client", &outsider.id]);
    assert!(audit.contains("token_exchange_refused"), "{audit}");
}

/// An exchange at the origin alone (no edge): `client` exchanges `subject`
/// with the extra `form` parameters.
fn origin_exchange(
    origin: &Origin,
    client: &ClientCreds,
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    let resp = http()
        .post(format!("{}/token", origin.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&form)
        .send()
        .expect("POST /token");
    let status = resp.status().as_u16();
    (status, resp.json().expect("token endpoint answers JSON"))
}

/// The attack: a resource server exchanges another party's token (here an
/// administrator's, which it received as that token's audience) into one
/// issued to itself, then presents that delegated token as its
/// `actor_token` while exchanging a user's token. `act.sub` of the result
/// would name the administrator as the acting party, though the
/// administrator never acted (the gateway did) and the gateway's own role
/// in the actor token is dropped. A delegated token (one with `act`) does
/// not represent its subject as an actor: it is refused.
#[test]
fn delegated_token_cannot_pose_as_the_actor() {
    const API: &str = "https://api.example";
    let origin = Origin::start();
    let admin = origin.create_client("admin", "read", API, &[]);
    let user = origin.create_client("user", "read", API, &[]);
    let gateway = origin.create_client(
        "gateway",
        "read",
        API,
        &[
            "--grant",
            EXCHANGE,
            "--grant",
            "client_credentials",
            "--serves",
            API,
        ],
    );
    let admin_token = origin.client_credentials(&admin, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let user_token = origin.client_credentials(&user, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let (s, t) = origin_exchange(&origin, &gateway, &admin_token, &[]);
    assert_eq!(s, 200, "{t}");
    let delegated = t["access_token"].as_str().expect("access_token").to_owned();
    assert_eq!(jwt_claims(&delegated)["sub"], admin.id.as_str());
    assert_eq!(jwt_claims(&delegated)["client_id"], gateway.id.as_str());

    let (s, e) = origin_exchange(
        &origin,
        &gateway,
        &user_token,
        &[
            ("actor_token", &delegated),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    );
    if s == 200 {
        let act = jwt_claims(e["access_token"].as_str().unwrap_or_default())["act"].clone();
        panic!("a delegated token posed as the actor: act = {act}");
    }
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );

    // The gateway's own token (its own identity) is a valid actor.
    let own = origin.client_credentials(&gateway, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let (s, t) = origin_exchange(
        &origin,
        &gateway,
        &user_token,
        &[("actor_token", &own), ("actor_token_type", ACCESS_TOKEN)],
    );
    assert_eq!(s, 200, "{t}");
    let act = &jwt_claims(t["access_token"].as_str().expect("access_token"))["act"];
    assert_eq!(act["sub"], gateway.id.as_str(), "{act}");
}

/// The attack: exchanging a token again and again nests `act` one level
/// deeper each time, until the origin signs a token no verifier (the
/// origin's own introspection, the edge) accepts, its JSON nested past
/// `common::json::MAX_DEPTH`. The chain is capped: the exchange past the
/// cap is refused (`invalid_grant`, audited), and every token the origin did
/// issue still verifies.
#[test]
fn act_chain_cannot_grow_past_what_verifiers_accept() {
    const API: &str = "https://api.example";
    let origin = Origin::start();
    let app = origin.create_client("app", "read", API, &[]);
    let gateway = origin.create_client(
        "gateway",
        "read",
        API,
        &["--grant", EXCHANGE, "--serves", API],
    );
    let mut current = origin.client_credentials(&app, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let mut refused = None;
    for depth in 1..=32 {
        let (s, t) = origin_exchange(&origin, &gateway, &current, &[]);
        if s != 200 {
            refused = Some((depth, s, t));
            break;
        }
        current = t["access_token"].as_str().expect("access_token").to_owned();
        let resp = http()
            .post(format!("{}/introspect", origin.url))
            .basic_auth(&gateway.id, gateway.secret.as_deref())
            .form(&[("token", current.as_str())])
            .send()
            .expect("POST /introspect");
        let body: Value = resp.json().expect("introspection answers JSON");
        assert_eq!(
            body["active"], true,
            "the origin issued a token at act depth {depth} that no verifier accepts"
        );
    }
    let (depth, s, e) = refused.expect("the act chain is capped");
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    assert!(depth <= 16, "capped at {depth}");
    let audit = origin.cli(&["audit", "--client", &gateway.id]);
    assert!(audit.contains("token_exchange_refused"), "{audit}");
}
