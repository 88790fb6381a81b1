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
            T0,
        )
        .await
        .unwrap_err();
        let status = err.into_response().status().as_u16();
        assert_eq!(status, 500, "{}: a database failure must be a 500", tdb.name);
    }
}

/// The unique index still maps to 409 (a lost race past the SELECT).
#[tokio::test]
async fn a_duplicate_username_is_still_a_conflict() {
    for tdb in databases() {
        let db = tdb.open().await;
        let pw = Password::new("correct horse battery".into());
        admin::create_user(&db, "bob", &pw, T0).await.unwrap();
        let err = admin::create_user(&db, "bob", &pw, T0).await.unwrap_err();
        assert_eq!(err.into_response().status().as_u16(), 409, "{}", tdb.name);
    }
}
