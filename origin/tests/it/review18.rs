//! Attack review of issue 18 (the origin floors): the regressions and
//! pre-existing holes found while checking the restructure.

use crate::support::*;
use axum::response::IntoResponse as _;
use gatehouse_origin::domain::admin;
use gatehouse_origin::support::secret::Password;

/// A database that refuses the user INSERT for any reason other than the
/// username's unique index (here a trigger standing in for a full disk or
/// a lost connection) is a server failure (500), not "the username is
/// taken" (409): the 4xx would hide the outage from the operator and the
/// monitoring, and tell the caller something false.
#[tokio::test]
async fn a_failed_user_insert_is_not_a_taken_username() {
    for tdb in databases() {
        let db = tdb.open().await;
        if tdb.name == "sqlite" {
            sqlx::query(
                "CREATE TRIGGER refuse_users BEFORE INSERT ON users \
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            )
            .execute(&db.pool)
            .await
            .unwrap();
        } else {
            sqlx::query(
                "CREATE FUNCTION refuse_users() RETURNS trigger AS \
                 $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
            )
            .execute(&db.pool)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_users BEFORE INSERT ON users \
                 FOR EACH ROW EXECUTE FUNCTION refuse_users()",
            )
            .execute(&db.pool)
            .await
            .unwrap();
        }
        let err = admin::create_user(
            &db,
            "alice",
            &Password::new("correct horse battery".into()),
            admin::Via::Cli,
            T0,
        )
        .await
        .unwrap_err();
        let status = err.into_response().status().as_u16();
        assert_eq!(
            status, 500,
            "{}: a database failure must be a 500",
            tdb.name
        );
    }
}

/// The unique index still maps to 409 (a lost race past the SELECT).
#[tokio::test]
async fn a_duplicate_username_is_still_a_conflict() {
    for tdb in databases() {
        let db = tdb.open().await;
        let pw = Password::new("correct horse battery".into());
        admin::create_user(&db, "bob", &pw, admin::Via::Cli, T0)
            .await
            .unwrap();
        let err = admin::create_user(&db, "bob", &pw, admin::Via::Cli, T0)
            .await
            .unwrap_err();
        assert_eq!(err.into_response().status().as_u16(), 409, "{}", tdb.name);
    }
}

/// `redirect_to` now builds the `Location` with the `url` crate: a
/// registered redirect URI's own query stays as registered (byte for
/// byte), and a hostile `state` (a `#`, a second `code`, a backslash, an
/// encoded `#`, non-ASCII, quotes) comes back as one `state` value, with no
/// fragment and no parameter of its own.
#[tokio::test]
async fn a_hostile_state_stays_one_parameter_after_a_registered_query() {
    use axum::body::Body;
    use axum::http::Request;
    use gatehouse_origin::domain::clients::{self, NewClient};
    let state = sqlite_state().await;
    let registered = "https://app.example/cb?x=1&y=%2F";
    let (client, _) = clients::create(
        &state.db,
        &NewClient {
            name: "web".into(),
            public: true,
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec![registered.into()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    let hostile = "a#b&code=evil\\c%23 \u{e9}<\"'>";
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", registered)
        .append_pair("scope", "not-granted")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", hostile)
        .finish();
    let req = Request::get(format!("/authorize?{q}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&state, req).await;
    assert!((300..400).contains(&status), "status {status}");
    let location = headers.get("location").unwrap().to_str().unwrap();
    assert!(
        location.starts_with("https://app.example/cb?x=1&y=%2F&"),
        "{location}"
    );
    let url = url::Url::parse(location).unwrap();
    assert_eq!(url.fragment(), None, "{location}");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let states: Vec<_> = pairs.iter().filter(|(k, _)| k == "state").collect();
    assert_eq!(states.len(), 1, "{location}");
    assert_eq!(states[0].1, hostile);
    assert!(!pairs.iter().any(|(k, _)| k == "code"), "{location}");
    assert_eq!(
        pairs
            .iter()
            .find(|(k, _)| k == "error")
            .map(|p| p.1.as_str()),
        Some("invalid_scope")
    );
}
