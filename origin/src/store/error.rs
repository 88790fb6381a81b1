//! The store's one error type: what a query can fail with, in terms the
//! domain can act on (a missing row, a conflicting row, a database that is
//! not there) rather than the driver's. The domain maps it into its own
//! error (`From<StoreError>` in `domain::error`); nothing above this floor
//! sees a sqlx type.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// A write conflicts with a stored row (unique or foreign key).
    #[error("conflict: {0}")]
    Conflict(#[source] sqlx::Error),
    /// The database cannot be reached (pool timeout or closed, I/O, TLS).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The group-commit task is gone (its runtime shut down).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// A write made on a client record read at an earlier
    /// `client_generation` was refused (nothing written): some client's
    /// registration changed since (see [`crate::store::client_generation`]).
    #[error("a client registration changed since the record was read")]
    ClientChanged,
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {column}")]
    Corrupt {
        /// The column.
        column: &'static str,
    },
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite file's directory could not be created.
    #[error("cannot create database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Any other driver error.
    #[error("database: {0}")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            sqlx::Error::Database(d)
                if matches!(
                    d.kind(),
                    ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation
                ) =>
            {
                Self::Conflict(e)
            }
            _ => Self::Other(e),
        }
    }
}
