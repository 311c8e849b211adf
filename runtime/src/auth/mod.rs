//! Who the user of a request or event is.
//!
//! The bridge reads [`CurrentUser`] from the request's extensions after the middleware chain ran,
//! so whatever middleware resolves the user (the session-backed authentication middleware, or
//! an app's own) decides it. Without such middleware every request is anonymous.

use std::collections::BTreeSet;
use std::sync::Arc;

/// A user account as handlers see it, already loaded (no further awaits to read it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Optional unique e-mail address.
    pub email: Option<String>,
    /// The language the user chose (see `ferrule::i18n`), if any.
    pub language: Option<String>,
    /// The user followed the link that confirmed `email` (see the `email_verification`
    /// setting); apps limit what unconfirmed users may do with [`guard::Guard::EmailVerified`].
    #[serde(default = "confirmed")]
    pub email_verified: bool,
    /// Inactive users are treated as anonymous.
    pub is_active: bool,
    /// May use staff pages.
    pub is_staff: bool,
    /// Has every permission.
    pub is_superuser: bool,
    /// Names of the groups the user is in.
    pub groups: BTreeSet<String>,
    /// Permission codes (`app.action`), the user's own and its groups'.
    pub permissions: BTreeSet<String>,
}

/// Users read from an older cache entry count as confirmed, as older accounts do.
fn confirmed() -> bool {
    true
}

impl User {
    /// Whether the user holds permission `perm` (superusers hold all).
    pub fn has_perm(&self, perm: &str) -> bool {
        self.is_active && (self.is_superuser || self.permissions.contains(perm))
    }

    /// Whether the user is in group `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }
}

/// The user of the current request: anonymous or an authenticated [`User`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CurrentUser {
    /// Nobody is logged in.
    #[default]
    Anonymous,
    /// A logged-in, active user.
    Authenticated(Arc<User>),
}

impl CurrentUser {
    /// `true` for a logged-in user.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Self::Authenticated(_))
    }

    /// The user, if logged in.
    pub fn user(&self) -> Option<&User> {
        match self {
            Self::Authenticated(u) => Some(u),
            Self::Anonymous => None,
        }
    }

    /// The username, or `None` when anonymous.
    pub fn username(&self) -> Option<&str> {
        self.user().map(|u| u.username.as_str())
    }

    /// Whether the user holds permission `perm`; always `false` when anonymous.
    pub fn has_perm(&self, perm: &str) -> bool {
        self.user().is_some_and(|u| u.has_perm(perm))
    }
}

impl From<User> for CurrentUser {
    fn from(u: User) -> Self {
        if u.is_active {
            Self::Authenticated(Arc::new(u))
        } else {
            Self::Anonymous
        }
    }
}

mod accounts;
pub(crate) mod codes;
pub mod confirmation;
mod errors;
pub mod guard;
mod hashing;
pub mod http;
mod links;
mod membership;
mod middleware;
pub mod password_policy;
pub mod recovery;
pub mod throttle;
mod users;

pub use accounts::{UserPage, UserSummary};
pub use errors::{AuthError, BUSY_MESSAGE};
pub(crate) use hashing::hashing_queue;
pub use hashing::{
    LOGINS_WAITING, QUEUE_PATIENCE, RETRY_AFTER_SECONDS, hash_password, verify_password,
};
pub(crate) use links::AccountLinks;
pub use middleware::auth_middleware;
#[cfg(feature = "admin")]
pub(crate) use users::validate_username;
pub use users::{
    Auth, GROUPS_TABLE, NewUser, PERMISSIONS_TABLE, USERS_TABLE, normalize_username, username_key,
};

/// Session key holding the logged-in user's id.
pub const SESSION_USER_ID: &str = "_auth_user_id";
/// Session key holding a fingerprint of the user's password hash: changing the password logs
/// out every other session.
pub const SESSION_AUTH_HASH: &str = "_auth_hash";
/// Name of the authentication middleware in the chain.
pub const AUTH_MIDDLEWARE: &str = "auth";

pub use crate::protocol::AuthState;

impl AuthState {
    /// The state for `user`.
    pub fn of(user: &CurrentUser) -> Self {
        match user.user() {
            None => Self::default(),
            Some(u) => Self {
                is_authenticated: true,
                username: u.username.clone(),
                email: u.email.clone(),
                is_staff: u.is_staff,
                is_superuser: u.is_superuser,
                groups: u.groups.iter().cloned().collect(),
            },
        }
    }

    /// Whether this is already [`AuthState::of`] `user`, found without building it: every
    /// event checks, and the user rarely changes.
    pub(crate) fn shows(&self, user: &CurrentUser) -> bool {
        match user.user() {
            None => *self == Self::default(),
            Some(u) => {
                self.is_authenticated
                    && self.username == u.username
                    && self.email == u.email
                    && self.is_staff == u.is_staff
                    && self.is_superuser == u.is_superuser
                    && self.groups.iter().eq(&u.groups)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Users that differ in one field or another, few enough values that pairs often agree.
    fn users() -> impl Strategy<Value = CurrentUser> {
        let name = prop::sample::select(vec!["ada", "bob"]);
        let email = prop::option::of(prop::sample::select(vec!["a@x.org", "b@x.org"]));
        let groups = prop::collection::btree_set(prop::sample::select(vec!["staff", "ops"]), 0..3);
        let perms = prop::collection::btree_set(prop::sample::select(vec!["a.b", "c.d"]), 0..3);
        let user = (name, email, any::<[bool; 3]>(), groups, perms).prop_map(
            |(name, email, [staff, superuser, verified], groups, perms)| {
                CurrentUser::Authenticated(Arc::new(User {
                    id: 1,
                    username: name.into(),
                    email: email.map(Into::into),
                    language: None,
                    email_verified: verified,
                    is_active: true,
                    is_staff: staff,
                    is_superuser: superuser,
                    groups: groups.into_iter().map(Into::into).collect(),
                    permissions: perms.into_iter().map(Into::into).collect(),
                }))
            },
        );
        prop_oneof![Just(CurrentUser::Anonymous), user]
    }

    proptest! {
        /// The bridge skips rebuilding `auth_state` when it `shows` the event's user: that
        /// must be exactly when rebuilding would change nothing, or a tab keeps showing a
        /// user's old groups or flags.
        #[test]
        fn shows_is_exactly_equality_with_the_rebuilt_state(shown in users(), now in users()) {
            let state = AuthState::of(&shown);
            prop_assert_eq!(state.shows(&now), state == AuthState::of(&now));
        }
    }
}
