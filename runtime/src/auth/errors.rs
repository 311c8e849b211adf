//! Why an account operation failed, and what each failure shows a user.

/// Why an account operation failed; messages are fit for the user.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Username taken.
    #[error("the username `{0}` is taken")]
    UsernameTaken(String),
    /// E-mail taken.
    #[error("the e-mail `{0}` is already used by another account")]
    EmailTaken(String),
    /// Input fails a rule.
    #[error("{0}")]
    Invalid(String),
    /// No such user.
    #[error("no user `{0}`")]
    NoSuchUser(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// The session store failed.
    #[error("session: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// Too many failed logins for this address or username (see [`super::throttle`]).
    #[error("{}", super::throttle::THROTTLED_MESSAGE)]
    Throttled,
    /// So many password checks are waiting that this one was turned away.
    #[error("{BUSY_MESSAGE}")]
    Busy,
}

/// What a login turned away under a flood of password checks is told.
pub const BUSY_MESSAGE: &str = "The server is busy checking passwords. Try again in a moment.";

/// Whether a session error means the store is unreachable (our store reports every database
/// failure as a backend error; bad data is a decode error).
pub(super) fn is_store_outage(e: &tower_sessions::session::Error) -> bool {
    matches!(
        e,
        tower_sessions::session::Error::Store(tower_sessions::session_store::Error::Backend(_))
    )
}

impl From<AuthError> for crate::Error {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Db(db) => db.into(),
            AuthError::Session(ref s) if is_store_outage(s) => {
                Self::unavailable(format!("session store: {s}"))
            }
            AuthError::Session(_) => Self::internal(e),
            AuthError::NoSuchUser(_) => Self::NotFound(e.to_string()),
            AuthError::Throttled => Self::TooManyRequests(e.to_string()),
            AuthError::Busy => Self::unavailable(BUSY_MESSAGE),
            other => Self::BadRequest(other.to_string()),
        }
    }
}
