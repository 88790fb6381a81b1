//! The `gatehouse-origin` command line: `serve`, `migrate`, `client …`,
//! `keys …`, `revoke`, `revocations …`, `audit`. Commands print JSON on stdout; logs go to stderr.

use crate::config::Config;
use crate::domain::admin::{self, ClientRequest, Via};
use crate::domain::error::Error;
use crate::domain::grant_type::GrantType;
use crate::store::db::Db;
use crate::support::clock::{Clock as _, SystemClock};
use clap::{Parser, Subcommand};
use serde::Serialize;
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
    /// Show recent audit events as JSON lines, one event per line, newest
    /// first (the admin API's `GET /admin/audit` order and filters).
    Audit {
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only this kind (`login_failed`, `token_issued`, …).
        #[arg(long, allow_hyphen_values = true)]
        kind: Option<String>,
        /// Only this client's events.
        #[arg(long, allow_hyphen_values = true)]
        client: Option<String>,
        /// Only this subject's events.
        #[arg(long, allow_hyphen_values = true)]
        subject: Option<String>,
        /// Only at or after this time (Unix seconds).
        #[arg(long)]
        since: Option<i64>,
        /// Only at or before this time (Unix seconds).
        #[arg(long)]
        until: Option<i64>,
        /// Only this request's events (its `Gatehouse-Request-Id`).
        #[arg(long, allow_hyphen_values = true)]
        request_id: Option<String>,
        /// Only this token id's events (the `jti` an edge log line names).
        #[arg(long, allow_hyphen_values = true)]
        jti: Option<String>,
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
        grants: Vec<GrantType>,
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
        /// Where RP-initiated logout may send the user back (repeatable; exact match).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// RFC 9126 §6: the client must push its authorization requests to
        /// `/par`; a front-channel `/authorize` without `request_uri` is refused.
        #[arg(long = "require-par")]
        require_par: bool,
    },
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// The client id (generated ids are base64url and may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Issue a new secret; the old one works for the grace period
    /// (GATEHOUSE_SECRET_GRACE; at most 30 days, as through the admin API).
    RotateSecret {
        /// The client id (generated ids are base64url and may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Grace period in seconds for the old secret (default from config;
        /// capped at 30 days).
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
        /// Login name (OIDC `preferred_username`).
        username: String,
        /// Full name (OIDC `name`): 1-256 characters, no control characters.
        #[arg(long)]
        name: Option<String>,
        /// Email address (OIDC `email`).
        #[arg(long)]
        email: Option<String>,
        /// The email address is verified (OIDC `email_verified`).
        #[arg(long)]
        email_verified: bool,
    },
    /// Change a user's profile: given fields change (an empty value clears
    /// it), others stay; a new email is unverified unless --email-verified
    /// says otherwise. `updated_at` becomes now if anything changed.
    Update {
        /// Login name.
        username: String,
        /// Full name (OIDC `name`); empty clears it.
        #[arg(long)]
        name: Option<String>,
        /// Email address (OIDC `email`); empty clears it.
        #[arg(long)]
        email: Option<String>,
        /// Whether the email address is verified: `true` or `false`.
        #[arg(long)]
        email_verified: Option<bool>,
    },
    /// List users (never their hashes).
    List,
    /// List a user's live browser sessions and grants (offline ones included), as JSON.
    Sessions {
        /// The login name.
        username: String,
    },
    /// End one of a user's browser sessions (and its online grants; offline
    /// grants stay), or revoke one grant (offline or not) by its grant id.
    RevokeSession {
        /// The login name.
        username: String,
        /// A session id or grant id of that user (from `user sessions`).
        #[arg(allow_hyphen_values = true)]
        sid: String,
    },
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

/// Why a command failed (printed on stderr; the exit status is 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The named thing does not exist.
    #[error("no {what} {name}")]
    NotFound {
        /// `client`, `user` or `signing key with kid`.
        what: &'static str,
        /// Its id or name.
        name: String,
    },
    /// `revoke` needs exactly one identifier.
    #[error("give exactly one of --jti, --sid, --sub, --client")]
    RevokeWhat,
    /// A reading command named a SQLite file that does not exist (it
    /// would have created an empty database and found nothing).
    #[error("no database at {0} (set GATEHOUSE_DATABASE_URL to the server's)")]
    NoDatabase(String),
    /// The operation was refused or failed.
    #[error(transparent)]
    Domain(#[from] Error),
    /// Storage could not be opened.
    #[error(transparent)]
    Db(#[from] crate::store::StoreError),
    /// The KEK could not be had.
    #[error(transparent)]
    Kek(#[from] crate::support::kek::KekError),
    /// The server failed.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// A file or standard input could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer could not be encoded.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

type CliResult = Result<(), CliError>;

/// Maps the domain's `NotFound` to a message naming what was looked for.
fn named<'a>(what: &'static str, name: &'a str) -> impl FnOnce(Error) -> CliError + 'a {
    move |e| match e {
        Error::NotFound => CliError::NotFound {
            what,
            name: name.to_owned(),
        },
        other => CliError::Domain(other),
    }
}

fn print<T: Serialize>(v: &T) -> CliResult {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// `migrate`'s answer.
#[derive(Serialize)]
struct Migrated {
    migrated: bool,
}

async fn run(command: Command, config: Config) -> CliResult {
    match command {
        Command::Serve { dev } => Ok(crate::server::serve(config, dev).await?),
        Command::Migrate => {
            Db::open(&config.database_url).await?;
            print(&Migrated { migrated: true })
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
                _ => return Err(CliError::RevokeWhat),
            };
            let db = Db::open(&config.database_url).await?;
            print(
                &admin::revoke(
                    &db,
                    &config,
                    kind,
                    &value,
                    Via::Cli,
                    SystemClock.now().secs(),
                )
                .await?,
            )
        }
        Command::Revocations(cmd) => {
            let db = Db::open(&config.database_url).await?;
            let now = SystemClock.now().secs();
            match cmd {
                RevocationsCommand::Status => {
                    print(&admin::revocation_status(&db, &config, now).await?)
                }
                RevocationsCommand::List => print(&admin::list_revocations(&db, now).await?),
            }
        }
        Command::Audit {
            limit,
            kind,
            client,
            subject,
            since,
            until,
            request_id,
            jti,
        } => {
            // Run from another directory, the default `./data/…` names no
            // file: say so rather than create one and list nothing.
            if let Some(file) = crate::store::db::sqlite_file(&config.database_url) {
                if !file.exists() {
                    return Err(CliError::NoDatabase(file.display().to_string()));
                }
            }
            let db = Db::open(&config.database_url).await?;
            let filter = crate::store::audit::AuditFilter {
                kind,
                client_id: client,
                subject,
                since,
                until,
                request_id,
                jti,
            };
            for event in admin::list_audit(&db, limit, &filter).await?.events {
                print(&event)?;
            }
            Ok(())
        }
    }
}

async fn user(cmd: UserCommand, config: Config) -> CliResult {
    let db = Db::open(&config.database_url).await?;
    let now = SystemClock.now().secs();
    match cmd {
        UserCommand::Create {
            username,
            name,
            email,
            email_verified,
        } => {
            let password = match std::env::var("GATEHOUSE_USER_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let password = crate::support::secret::Password::new(password);
            let profile = crate::domain::users::ProfileInput {
                name,
                email,
                email_verified: Some(email_verified),
            };
            print(
                &admin::create_user_with_profile(
                    &db,
                    &username,
                    &password,
                    &profile,
                    Via::Cli,
                    now,
                )
                .await?,
            )
        }
        UserCommand::Update {
            username,
            name,
            email,
            email_verified,
        } => {
            let profile = crate::domain::users::ProfileInput {
                name,
                email,
                email_verified,
            };
            print(
                &admin::update_user(&db, &username, &profile, Via::Cli, now)
                    .await
                    .map_err(named("user", &username))?,
            )
        }
        UserCommand::List => print(&admin::list_users(&db).await?),
        UserCommand::Sessions { username } => print(
            &admin::user_sessions(&db, &username, now)
                .await
                .map_err(named("user", &username))?,
        ),
        UserCommand::RevokeSession { username, sid } => print(
            &admin::revoke_session(&db, &config, &username, &sid, Via::Cli, now)
                .await
                .map_err(named("session of user", &username))?,
        ),
        UserCommand::Delete { username } => print(
            &admin::delete_user(&db, &config, &username, Via::Cli, now)
                .await
                .map_err(named("user", &username))?,
        ),
    }
}

async fn client(cmd: ClientCommand, config: Config) -> CliResult {
    let db = Db::open(&config.database_url).await?;
    let now = SystemClock.now().secs();
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
            post_logout_redirect_uris,
            require_par,
        } => {
            let jwks = match jwks_file {
                Some(p) => Some(std::fs::read_to_string(p)?),
                None => None,
            };
            let request = ClientRequest {
                name,
                scope,
                audiences,
                grant_types: grants.iter().map(|g| g.as_str().to_owned()).collect(),
                redirect_uris,
                public,
                dpop_required,
                jwks,
                serves,
                legacy_assertion_audience,
                post_logout_redirect_uris,
                require_pushed_authorization_requests: require_par,
            };
            print(
                &admin::create_client(&db, &config.default_audience, request, Via::Cli, now)
                    .await?,
            )
        }
        ClientCommand::List => print(&admin::list_clients(&db).await?),
        ClientCommand::Show { client_id } => print(
            &admin::show_client(&db, &client_id)
                .await
                .map_err(named("client", &client_id))?,
        ),
        ClientCommand::RotateSecret { client_id, grace } => print(
            &admin::rotate_secret(&db, config.secret_grace, &client_id, grace, Via::Cli, now)
                .await
                .map_err(named("client", &client_id))?,
        ),
        ClientCommand::Delete { client_id } => print(
            &admin::delete_client(&db, &config, &client_id, Via::Cli, now)
                .await
                .map_err(named("client", &client_id))?,
        ),
    }
}

async fn keys(cmd: KeysCommand, config: Config) -> CliResult {
    let db = Db::open(&config.database_url).await?;
    let now = SystemClock.now().secs();
    match cmd {
        KeysCommand::List => print(&admin::list_keys(&db, now).await?),
        KeysCommand::Rotate { immediate } => {
            let kek = crate::server::resolve_kek(&config)?;
            print(&admin::rotate_key(&db, &kek, &config, immediate, now).await?)
        }
        KeysCommand::Retire {
            kid,
            now: unpublish,
        } => {
            let kek = crate::server::resolve_kek(&config)?;
            print(
                &admin::retire_key(&db, &kek, &config, &kid, unpublish, now)
                    .await
                    .map_err(named("signing key with kid", &kid))?,
            )
        }
    }
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
