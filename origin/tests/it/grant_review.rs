//! Attacks on ending grants (found by review of c822be8, the o1b merge): a
//! code that an `/authorize` in flight inserted just after a `sid`, `sub`
//! or `client_id` revocation marked the grant's codes used escaped that
//! UPDATE, and its redemption minted a new refresh family whose tokens all
//! post-date the revocation entry; a rotated DPoP-bound refresh token
//! presented without its key revoked the family (reuse detection before
//! the binding check), so a leaked bound token was enough to end the
//! rightful client's grant.

use crate::support::*;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use gatehouse_origin::config::Config;
use gatehouse_origin::domain::error::Error;
use gatehouse_origin::domain::grants::{self, CodeRedemption, Refresh};
use gatehouse_origin::domain::introspect;
use gatehouse_origin::domain::token::RequestContext;
use gatehouse_origin::store::revocation;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn insert_code(
    state: &gatehouse_origin::domain::state::AppState,
    raw: &str,
    client_id: &str,
    user_id: &str,
    sid: &str,
    created_at: i64,
) {
    let hash = gatehouse_origin::support::secret::AuthCode::new(raw.to_owned()).hash_b64();
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, audience, \
         code_challenge, dpop_jkt, sid, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, 'read', $5, $6, NULL, $7, $8, $9, NULL)",
    )
    .bind(hash)
    .bind(client_id)
    .bind(user_id)
    .bind(CB)
    .bind(AUD)
    .bind(CHALLENGE)
    .bind(sid)
    .bind(created_at)
    .bind(created_at + 600)
    .execute(&state.db.pool)
    .await
    .unwrap();
}

/// The revocation's UPDATE of `auth_codes` cannot see a code whose INSERT
/// commits after it (the session was read before the revocation): such a
/// code, issued before the revocation, must still be refused.
#[tokio::test]
async fn a_code_issued_before_a_revocation_but_committed_after_it_cannot_be_redeemed() {
    let mut problems = Vec::new();
    for tdb in databases() {
        let config = Config::for_tests(&tdb.url);
        let state = state_with(config, tdb.open().await).await;
        for kind in [
            RevocationKind::Sid,
            RevocationKind::Sub,
            RevocationKind::ClientId,
        ] {
            let (client, _) = web_client(&state.db, true, T0).await;
            let user = create_user(
                &state.db,
                &format!("u-{}", kind.name()).replace('_', "-"),
                T0,
            )
            .await;
            let sid = format!("sid-{}", kind.name());
            let value = match kind {
                RevocationKind::Sid => sid.clone(),
                RevocationKind::Sub => user.user_id.clone(),
                _ => client.client_id.clone(),
            };
            let span = revocation::cover_span(&state.db, &state.config)
                .await
                .unwrap();
            introspect::revoke_identifier(&state.db, span, kind, &value, "test", T0)
                .await
                .unwrap();
            // Issued in the revocation's second, committed after its UPDATE.
            let raw = format!("code-{}", kind.name());
            insert_code(&state, &raw, &client.client_id, &user.user_id, &sid, T0.0).await;
            let got = grants::redeem_code(
                &state.token_path().unwrap(),
                &client,
                CodeRedemption {
                    code: &raw,
                    redirect_uri: Some(CB),
                    code_verifier: Some(VERIFIER),
                    jkt: None,
                },
                RequestContext {
                    ip: None,
                    now: UnixTime(T0.0 + 1),
                    client_as_of: None,
                },
            )
            .await;
            if !matches!(got, Err(Error::InvalidGrant(_))) {
                problems.push(format!(
                    "{}: {} revoked, yet its earlier code was redeemed: {:?}",
                    tdb.name,
                    kind.name(),
                    got.map(|_| "tokens issued")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

async fn insert_refresh(
    state: &gatehouse_origin::domain::state::AppState,
    raw: &str,
    client_id: &str,
    user_id: &str,
    jkt: &str,
    rotated_at: Option<i64>,
) {
    let hash = gatehouse_origin::support::secret::RefreshToken::new(raw.to_owned()).hash_b64();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, \
         dpop_jkt, created_at, expires_at, family_expires_at, rotated_at, revoked_at) \
         VALUES ($1, 'fam', $2, $3, 'read', $4, $5, $6, $7, $7, $8, NULL)",
    )
    .bind(hash)
    .bind(client_id)
    .bind(user_id)
    .bind(AUD)
    .bind(jkt)
    .bind(T0.0)
    .bind(T0.0 + 86_400)
    .bind(rotated_at)
    .execute(&state.db.pool)
    .await
    .unwrap();
}

/// Someone holding a rotated DPoP-bound refresh token but not its key (the
/// binding is what makes a leaked token useless) must not be able to end
/// the grant by presenting it: the binding is checked before reuse.
#[tokio::test]
async fn a_rotated_dpop_bound_refresh_token_without_its_key_does_not_revoke_the_family() {
    let mut problems = Vec::new();
    for tdb in databases() {
        let config = Config::for_tests(&tdb.url);
        let state = state_with(config, tdb.open().await).await;
        let (client, _) = web_client(&state.db, true, T0).await;
        let user = create_user(&state.db, "frank", T0).await;
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        insert_refresh(
            &state,
            "rt-old",
            &client.client_id,
            &user.user_id,
            jkt,
            Some(T0.0),
        )
        .await;
        insert_refresh(
            &state,
            "rt-new",
            &client.client_id,
            &user.user_id,
            jkt,
            None,
        )
        .await;
        let ctx = RequestContext {
            ip: None,
            now: UnixTime(T0.0 + 5),
            client_as_of: None,
        };
        let stolen = grants::refresh(
            &state.token_path().unwrap(),
            &client,
            Refresh {
                refresh_token: "rt-old",
                scope: None,
                jkt: Some("attackers-own-key-thumbprint"),
            },
            ctx,
        )
        .await;
        if !matches!(stolen, Err(Error::InvalidGrant(_))) {
            problems.push(format!(
                "{}: the keyless presentation was not refused",
                tdb.name
            ));
        }
        let rightful = grants::refresh(
            &state.token_path().unwrap(),
            &client,
            Refresh {
                refresh_token: "rt-new",
                scope: None,
                jkt: Some(jkt),
            },
            ctx,
        )
        .await;
        if let Err(e) = rightful {
            problems.push(format!(
                "{}: the rightful client's refresh failed after a keyless presentation: {e}",
                tdb.name
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A second revocation of the same `sub` (or `sid`, `client_id`) computed
/// with an earlier clock — another replica, the CLI on another host, or a
/// grant whose newest issuance was pruned or deleted in between — used to
/// overwrite `revoked_at` with the smaller value, un-revoking the tokens
/// issued between the two (in the table and in what the edge was pushed).
#[tokio::test]
async fn a_later_revocation_with_an_earlier_clock_does_not_lower_revoked_at() {
    use sqlx::Row as _;
    let mut problems = Vec::new();
    for tdb in databases() {
        let config = Config::for_tests(&tdb.url);
        let state = state_with(config, tdb.open().await).await;
        let span = revocation::cover_span(&state.db, &state.config)
            .await
            .unwrap();
        for (kind, now) in [
            (RevocationKind::Sub, T0.0 + 10),
            (RevocationKind::Sub, T0.0),
        ] {
            let _ =
                introspect::revoke_identifier(&state.db, span, kind, "u1", "test", UnixTime(now))
                    .await
                    .unwrap();
        }
        let stored: i64 = sqlx::query("SELECT revoked_at FROM revocations WHERE value = 'u1'")
            .fetch_one(&state.db.pool)
            .await
            .unwrap()
            .try_get("revoked_at")
            .unwrap();
        let pushed: String = sqlx::query("SELECT payload FROM outbox ORDER BY id DESC LIMIT 1")
            .fetch_one(&state.db.pool)
            .await
            .unwrap()
            .try_get("payload")
            .unwrap();
        let pushed: serde_json::Value = serde_json::from_str(&pushed).unwrap();
        if stored != T0.0 + 10 || pushed["revoked_at"] != T0.0 + 10 {
            problems.push(format!(
                "{}: revoked_at lowered from {} to stored {stored}, pushed {}",
                tdb.name,
                T0.0 + 10,
                pushed["revoked_at"]
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
