//! The `gatehouse-origin` command line: `serve`, `migrate`, `client …`,
//! `keys …`, `revoke`, `revocations …`, `audit`. Commands print JSON on stdout; logs go to stderr.

use crate::clients::{self, NewClient};
use crate::config::Config;
use crate::db::Db;
use crate::state::now;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Gatehouse's OAuth 2.1 authorization server and admin CLI.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-origin", version)]
pub struct Cli {
    /// Configuration file (TOML); `GATEHOUSE_*` variables override it.
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (needs GATEHOUSE_KEK, or `--dev`).
    Serve {
        /// Development: without GATEHOUSE_KEK, generate and use a KEK stored
        /// next to the data (which protects nothing against a stolen disk).
        #[arg(long)]
        dev: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users who log in at /authorize.
    #[command(subcommand)]
    User(UserCommand),
    /// Revoke tokens by jti, grant (sid), subject or client (exactly one).
    Revoke {
        /// One access token's id.
        #[arg(long, group = "what", allow_hyphen_values = true)]
        jti: Option<String>,
        /// A grant / refresh family.
        #[arg(long, group = "what", allow_hyphen_values = true)]
        sid: Option<String>,
        /// A subject.
        #[arg(long, group = "what", allow_hyphen_values = true)]
        sub: Option<String>,
        /// A client.
        #[arg(long, group = "what", allow_hyphen_values = true)]
        client: Option<String>,
    },
    /// The revocation pusher.
    #[command(subcommand)]
    Revocations(RevocationsCommand),
    /// Show recent audit events.
    Audit {
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only this client's events.
        #[arg(long, allow_hyphen_values = true)]
        client: Option<String>,
    },
}

/// `client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and (once) its secret.
    Create {
        /// Human-readable name.
        #[arg(long)]
        name: String,
        /// Allowed scopes, space-separated.
        #[arg(long, default_value = "")]
        scope: String,
        /// Allowed audience (repeatable; the first is the default). Default: GATEHOUSE_DEFAULT_AUDIENCE.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Allowed grant type (repeatable). Default: client_credentials for confidential clients.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (no secret).
        #[arg(long)]
        public: bool,
        /// Require DPoP-bound tokens.
        #[arg(long)]
        dpop_required: bool,
        /// private_key_jwt (RFC 7523): a file holding the client's public JWK set.
        #[arg(long)]
        jwks_file: Option<PathBuf>,
        /// An audience this client serves as a resource server (repeatable): it
        /// may introspect tokens for it and exchange tokens naming it.
        #[arg(long = "serves")]
        serves: Vec<String>,
        /// private_key_jwt compatibility: also accept the token endpoint URL as
        /// the assertion's `aud` (default: the issuer identifier only).
        #[arg(long)]
        legacy_assertion_audience: bool,
    },
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// The client id (generated ids are base64url and may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Issue a new secret; the old one works for the grace period (GATEHOUSE_SECRET_GRACE).
    RotateSecret {
        /// The client id (generated ids are base64url and may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Grace period in seconds for the old secret (default from config).
        #[arg(long)]
        grace: Option<i64>,
    },
    /// Delete a client.
    Delete {
        /// The client id (generated ids are base64url and may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

/// `user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from GATEHOUSE_USER_PASSWORD if
    /// set, else from the first line of standard input (never an argument).
    Create {
        /// Login name.
        username: String,
    },
    /// List users (never their hashes).
    List,
    /// Delete a user, end their sessions and revoke their tokens.
    Delete {
        /// Login name.
        username: String,
    },
}

/// `revocations …`
#[derive(Debug, Subcommand)]
pub enum RevocationsCommand {
    /// Pending and delivered document versions, pending outbox rows, the last error.
    Status,
    /// Live revocations.
    List,
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their schedule.
    List,
    /// Start a rotation: publish a new key now; it signs after the publish lead.
    Rotate {
        /// Make the new key sign at once (after a key compromise; caches may lag).
        #[arg(long)]
        immediate: bool,
    },
    /// Retire a key (after a leak): it never signs again; a new key signs at
    /// once if it was the signer. Running servers pick the change up within
    /// GATEHOUSE_KEY_CHECK_SECS (the admin API acts at once).
    Retire {
        /// The key id.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Also remove it from the JWKS now and destroy it: every token it
        /// signed is refused once verifiers refresh their keys.
        #[arg(long)]
        now: bool,
    },
}

/// Runs the CLI from the process arguments.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // Logging is configured by the config; a config error goes to stderr plainly.
            eprintln!("gatehouse-origin: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "command failed");
            eprintln!("gatehouse-origin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn print(v: &serde_json::Value) {
    println!("{v}");
}

async fn run(command: Command, config: Config) -> CliResult {
    match command {
        Command::Serve { dev } => Ok(crate::server::serve(config, dev).await?),
        Command::Migrate => {
            Db::open(&config.database_url).await?;
            print(&json!({"migrated": true}));
            Ok(())
        }
        Command::Client(c) => client(c, config).await,
        Command::Keys(k) => keys(k, config).await,
        Command::User(u) => user(u, config).await,
        Command::Revoke {
            jti,
            sid,
            sub,
            client,
        } => {
            use gatehouse_common::revocation::RevocationKind;
            let (kind, value) = match (jti, sid, sub, client) {
                (Some(v), None, None, None) => (RevocationKind::Jti, v),
                (None, Some(v), None, None) => (RevocationKind::Sid, v),
                (None, None, Some(v), None) => (RevocationKind::Sub, v),
                (None, None, None, Some(v)) => (RevocationKind::ClientId, v),
                _ => return Err("give exactly one of --jti, --sid, --sub, --client".into()),
            };
            let db = Db::open(&config.database_url).await?;
            let span = crate::revocation::cover_span(&db, &config).await?;
            let rev = crate::introspect::revoke_identifier(
                &db,
                span,
                kind,
                &value,
                crate::revocation::REASON_CLI,
                now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            print(&serde_json::to_value(rev)?);
            Ok(())
        }
        Command::Revocations(cmd) => {
            let db = Db::open(&config.database_url).await?;
            let now = now();
            match cmd {
                RevocationsCommand::Status => {
                    let span = crate::revocation::cover_span(&db, &config).await?;
                    let status = crate::revocation_push::status(&db, span, now).await?;
                    print(&serde_json::to_value(status)?);
                }
                RevocationsCommand::List => {
                    let list = crate::revocation::list(&db, now).await?;
                    print(&json!({ "revocations": list }));
                }
            }
            Ok(())
        }
        Command::Audit { limit, client } => {
            let db = Db::open(&config.database_url).await?;
            let events = crate::audit::list(&db, limit.clamp(1, 10_000), client.as_deref()).await?;
            print(&json!({ "events": events }));
            Ok(())
        }
    }
}

async fn user(cmd: UserCommand, config: Config) -> CliResult {
    let db = Db::open(&config.database_url).await?;
    let now = now();
    match cmd {
        UserCommand::Create { username } => {
            let password = match std::env::var("GATEHOUSE_USER_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let u =
                crate::users::create(&db, &username, &crate::secret::Password::new(password), now)
                    .await
                    .map_err(|e| e.to_string())?;
            print(&serde_json::to_value(u)?);
        }
        UserCommand::List => {
            print(&json!({ "users": crate::users::list(&db).await? }));
        }
        UserCommand::Delete { username } => {
            let span = crate::revocation::cover_span(&db, &config).await?;
            match crate::users::delete(&db, &username, span, now).await? {
                Some(u) => print(&json!({ "deleted": u.username, "user_id": u.user_id })),
                None => return Err(format!("no user {username}").into()),
            }
        }
    }
    Ok(())
}

async fn client(cmd: ClientCommand, config: Config) -> CliResult {
    let db = Db::open(&config.database_url).await?;
    let now = now();
    match cmd {
        ClientCommand::Create {
            name,
            scope,
            audiences,
            grants,
            redirect_uris,
            public,
            dpop_required,
            jwks_file,
            serves,
            legacy_assertion_audience,
        } => {
            let jwks = match jwks_file {
                Some(p) => Some(std::fs::read_to_string(p)?),
                None => None,
            };
            let new = NewClient {
                name,
                public,
                scopes: scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                audiences: if audiences.is_empty() {
                    vec![config.default_audience.clone()]
                } else {
                    audiences
                },
                grant_types: if grants.is_empty() && !public {
                    vec!["client_credentials".into()]
                } else {
                    grants
                },
                redirect_uris,
                dpop_required,
                jwks,
                serves,
                legacy_assertion_audience,
            };
            let (client, secret) = clients::create(&db, &new, now).await?;
            crate::audit::record(
                &db.pool,
                &crate::audit::AuditEvent::new("client_created", now)
                    .client(&client.client_id)
                    .detail("cli"),
            )
            .await?;
            let mut out = serde_json::to_value(client.view())?;
            if let (Some(s), Some(m)) = (secret, out.as_object_mut()) {
                m.insert("client_secret".into(), s.expose().into());
            }
            print(&out);
        }
        ClientCommand::List => {
            let list: Vec<_> = clients::list(&db)
                .await?
                .iter()
                .map(clients::Client::view)
                .collect();
            print(&json!({ "clients": list }));
        }
        ClientCommand::Show { client_id } => match clients::get(&db, &client_id).await? {
            Some(c) => print(&serde_json::to_value(c.view())?),
            None => return Err(format!("no client {client_id}").into()),
        },
        ClientCommand::RotateSecret { client_id, grace } => {
            let grace = grace.unwrap_or(config.secret_grace).max(0);
            match clients::rotate_secret(&db, &client_id, grace, now).await? {
                Some(secret) => {
                    crate::audit::record(
                        &db.pool,
                        &crate::audit::AuditEvent::new("client_secret_rotated", now)
                            .client(&client_id)
                            .detail("cli"),
                    )
                    .await?;
                    print(&json!({
                        "client_id": client_id,
                        "client_secret": secret.expose(),
                        "previous_secret_expires_at": now.0.saturating_add(grace),
                    }));
                }
                None => return Err(format!("no client {client_id}").into()),
            }
        }
        ClientCommand::Delete { client_id } => {
            let span = crate::revocation::cover_span(&db, &config).await?;
            if !clients::delete(&db, &client_id, span, "client deleted (cli)", now).await? {
                return Err(format!("no client {client_id}").into());
            }
            crate::audit::record(
                &db.pool,
                &crate::audit::AuditEvent::new("client_deleted", now)
                    .client(&client_id)
                    .detail("cli"),
            )
            .await?;
            print(&json!({ "deleted": client_id }));
        }
    }
    Ok(())
}

async fn keys(cmd: KeysCommand, config: Config) -> CliResult {
    let db = Db::open(&config.database_url).await?;
    let now = now();
    match cmd {
        KeysCommand::List => {
            print(&json!({ "keys": crate::keys::describe(&db, now).await? }));
        }
        KeysCommand::Rotate { immediate } => {
            let kek = crate::server::resolve_kek(&config)?;
            let meta = crate::keys::rotate(
                &db,
                &kek,
                config.signing_alg,
                &config.key_schedule,
                immediate,
                now,
            )
            .await?;
            crate::audit::record(
                &db.pool,
                &crate::audit::AuditEvent::new("key_rotated", now)
                    .detail(format!("kid={} active_at={}", meta.kid, meta.active_at)),
            )
            .await?;
            print(&serde_json::to_value(&meta)?);
        }
        KeysCommand::Retire {
            kid,
            now: unpublish,
        } => {
            let kek = crate::server::resolve_kek(&config)?;
            let Some(done) =
                crate::keys::retire(&db, &kek, config.signing_alg, &kid, unpublish, now).await?
            else {
                return Err(format!("no signing key with kid {kid}").into());
            };
            crate::audit::record(&db.pool, &done.audit_event(now)).await?;
            tracing::warn!(kid = %done.kid, removed = done.removed_at.is_some(), "{}", done.warning);
            print(&serde_json::to_value(&done)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser as _;

    /// Generated ids are base64url, so about one in 64 begins with `-`; the
    /// CLI must take it as the id, not as an unknown flag.
    #[test]
    fn ids_beginning_with_a_hyphen_are_values() {
        for args in [
            &["gatehouse-origin", "client", "show", "-Tabc"][..],
            &["gatehouse-origin", "client", "delete", "-Tabc"],
            &["gatehouse-origin", "client", "rotate-secret", "-Tabc"],
            &["gatehouse-origin", "revoke", "--jti", "-Tabc"],
            &["gatehouse-origin", "revoke", "--client", "-Tabc"],
            &["gatehouse-origin", "audit", "--client", "-Tabc"],
            &["gatehouse-origin", "keys", "retire", "-Tabc", "--now"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
    }
}
