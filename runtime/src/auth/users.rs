//! Users in the database: accounts, authentication, loading with groups and permissions, login
//! and logout on a session.

use std::collections::BTreeSet;
use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, SqlErr,
};
use tower_sessions::Session;

use crate::cache::{Loaded, TtlCache};

use super::errors::AuthError;
use super::hashing::{hash_password, verify_password};
use super::{CurrentUser, SESSION_AUTH_HASH, SESSION_USER_ID, User};
use crate::db::entities::user;
use crate::db::{now, stmt};

/// A new account.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// 1 to 150 characters of letters, digits and `@.+-_`.
    pub username: String,
    /// Optional e-mail.
    pub email: Option<String>,
    /// Meets the password policy: at least 8 characters, not mostly the username or e-mail,
    /// not a well-known password, not only digits or blanks.
    pub password: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
}

/// The fingerprint of a password hash kept in the session (its last 16 characters: the tail of
/// the argon2 output, which changes with every new password).
pub(super) fn auth_hash(password_hash: &str) -> String {
    auth_hash_in(password_hash).to_owned()
}

/// [`auth_hash`] as the part of `password_hash` it is, for comparing without a copy.
fn auth_hash_in(password_hash: &str) -> &str {
    let start = password_hash.len().saturating_sub(16);
    &password_hash[start..]
}

/// A cached user and its password hash: shared, since every event of the user reads them.
type UserRow = (Arc<User>, Arc<str>);

pub use crate::db::entities::user::{key as username_key, normalize as normalize_username};

/// Checks a (normalised) username against the rules, with a message naming the problem.
pub(crate) fn validate_username(username: &str) -> Result<(), AuthError> {
    if username.is_empty() || username.chars().count() > 150 {
        return Err(AuthError::Invalid(
            "username must be 1 to 150 characters".into(),
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        return Err(AuthError::Invalid(
            "username may contain only letters, digits and @ . + - _".into(),
        ));
    }
    Ok(())
}

/// Checks a new password of `username` (with `email`) against the password policy.
pub(crate) fn validate_password(
    password: &str,
    username: &str,
    email: Option<&str>,
) -> Result<(), AuthError> {
    super::password_policy::check(password, username, email).map_err(AuthError::Invalid)
}

/// Accounts in the app's database.
#[derive(Clone)]
pub struct Auth {
    pub(super) db: DatabaseConnection,
    throttle: super::throttle::Throttle,
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
    /// Users resolved for events; whatever changes a user evicts it.
    pub(super) users: Arc<TtlCache<i64, UserRow>>,
    /// Where changes of the accounts' tables are told, for the tabs that show them live
    /// ([`crate::Registered::on_change`]); unwired until the app's server is built.
    changes: crate::rooms::Rooms,
    /// `email_verification = "required"`: users who have not confirmed their address are
    /// anonymous.
    confirmation_required: Arc<std::sync::atomic::AtomicBool>,
}

/// The accounts' table a live list of users shows ([`crate::Registered::on_change`]).
pub const USERS_TABLE: &str = "ferrule_users";
/// The groups' table a live list of groups shows.
pub const GROUPS_TABLE: &str = "ferrule_groups";
/// The permissions' table a live list of permissions shows.
pub const PERMISSIONS_TABLE: &str = "ferrule_permissions";

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Accounts in `db` (run the runtime's migrations first).
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            throttle: super::throttle::Throttle::new(crate::db::expiring::Expiring::new(
                db.clone(),
            )),
            db,
            dummy_hash: Arc::default(),
            users: Arc::new(TtlCache::new(std::time::Duration::ZERO)),
            changes: crate::rooms::Rooms::default(),
            confirmation_required: Arc::default(),
        }
    }

    /// Makes users who have not confirmed their e-mail address anonymous (setting
    /// `email_verification = "required"`).
    pub fn set_confirmation_required(&self, required: bool) {
        self.confirmation_required
            .store(required, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether users must confirm their e-mail address before they count as logged in.
    pub fn confirmation_required(&self) -> bool {
        self.confirmation_required
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells changes of the accounts' tables through `rooms` (the app's).
    pub(crate) fn telling(mut self, rooms: crate::rooms::Rooms) -> Self {
        self.changes = rooms;
        self
    }

    /// Tells the tabs showing `tables` live that their rows changed.
    pub(super) fn told(&self, tables: &[&str]) {
        for table in tables {
            self.changes.changed(table);
        }
    }

    /// Counts IPv6 clients by their first `len` bits in the login throttle (setting
    /// `ipv6_prefix_len`; 128: each address alone).
    pub fn set_ipv6_prefix_len(&self, len: u8) {
        self.throttle.set_ipv6_prefix_len(len);
    }

    /// Keeps users resolved for events in memory for `ttl` (zero: off). Changes made through
    /// this `Auth` (or its clones) evict at once; changes by other processes can go unseen for
    /// up to `ttl`.
    pub fn set_cache_ttl(&self, ttl: std::time::Duration) {
        self.users.set_ttl(ttl);
    }

    /// The connection.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Creates an account. The username is stored NFKC-normalised and must be unique
    /// whatever its case.
    pub async fn create_user(&self, new: NewUser) -> Result<User, AuthError> {
        self.create_user_with(new, true, false).await
    }

    /// [`Auth::create_user`] with the password hashed once whatever happens; with
    /// `reveal_taken_email` off, an e-mail another account has is dropped instead of refused
    /// (so the answer and its timing do not tell who has an account here). With
    /// `unconfirmed`, an account with an e-mail address waits for its confirmation.
    pub(crate) async fn create_user_with(
        &self,
        new: NewUser,
        reveal_taken_email: bool,
        unconfirmed: bool,
    ) -> Result<User, AuthError> {
        let username = normalize_username(&new.username);
        validate_username(&username)?;
        validate_password(&new.password, &username, new.email.as_deref())?;
        let email = new.email.filter(|e| !e.trim().is_empty());
        if let Some(e) = &email
            && !e.contains('@')
        {
            return Err(AuthError::Invalid(format!(
                "`{e}` is not an e-mail address"
            )));
        }
        let hash = hash_password(&new.password).await?;
        let row = |email: Option<String>| user::ActiveModel {
            username: Set(username.clone()),
            username_key: Set(username_key(&username)),
            email_verified: Set(!(unconfirmed && email.is_some())),
            email: Set(email),
            password_hash: Set(hash.clone()),
            is_active: Set(true),
            is_staff: Set(new.is_staff || new.is_superuser),
            is_superuser: Set(new.is_superuser),
            date_joined: Set(now()),
            last_login: Set(None),
            ..Default::default()
        };
        let mut attempt = row(email.clone());
        loop {
            match attempt.insert(&self.db).await {
                Ok(model) => {
                    self.told(&[USERS_TABLE]);
                    return Ok(to_user(model, BTreeSet::new(), BTreeSet::new()));
                }
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    let taken = user::Entity::find()
                        .filter(user::Column::UsernameKey.eq(username_key(&username)))
                        .one(&self.db)
                        .await?
                        .is_some();
                    if taken {
                        return Err(AuthError::UsernameTaken(username));
                    }
                    if reveal_taken_email || email.is_none() {
                        return Err(AuthError::EmailTaken(email.unwrap_or_default()));
                    }
                    tracing::info!("registration with a taken e-mail: account made without it");
                    attempt = row(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The user named `username`, with groups and permissions.
    pub async fn find_by_username(&self, username: &str) -> Result<Option<User>, AuthError> {
        let Some(row) = user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username_key(username)))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.load(row.id).await
    }

    /// The user with `id`, with groups and permissions.
    pub async fn load(&self, id: i64) -> Result<Option<User>, AuthError> {
        Ok(self
            .load_row(id)
            .await?
            .map(|(u, _)| Arc::unwrap_or_clone(u)))
    }

    /// The user with `id`, its groups and permissions, and its password hash, in one query (the
    /// bridge runs this on every event).
    async fn load_row(&self, id: i64) -> Result<Option<UserRow>, AuthError> {
        self.users
            .get_or_load(&id, async || {
                Ok(match self.query_row(id).await? {
                    Some(row) => Loaded::Keep(row),
                    None => Loaded::Missing,
                })
            })
            .await
    }

    /// [`Self::load_row`]'s query, uncached.
    async fn query_row(&self, id: i64) -> Result<Option<UserRow>, AuthError> {
        let backend = self.db.get_database_backend();
        let sql = "SELECT 'u' AS kind, username AS name, email, language, password_hash, \
                   is_active, is_staff, is_superuser, email_verified FROM ferrule_users WHERE id = ? \
                   UNION ALL SELECT 'g', g.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
                   FROM ferrule_user_groups ug JOIN ferrule_groups g ON g.id = ug.group_id \
                   WHERE ug.user_id = ? \
                   UNION ALL SELECT 'p', p.codename, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
                   FROM ferrule_user_permissions up \
                   JOIN ferrule_permissions p ON p.id = up.permission_id WHERE up.user_id = ? \
                   UNION ALL SELECT 'p', p.codename, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
                   FROM ferrule_user_groups ug \
                   JOIN ferrule_group_permissions gp ON gp.group_id = ug.group_id \
                   JOIN ferrule_permissions p ON p.id = gp.permission_id WHERE ug.user_id = ?";
        let rows = self
            .db
            .query_all_raw(stmt(
                backend,
                sql,
                vec![id.into(), id.into(), id.into(), id.into()],
            ))
            .await?;
        let mut found: Option<(User, String)> = None;
        let (mut groups, mut perms) = (BTreeSet::new(), BTreeSet::new());
        for r in rows {
            let kind: String = r.try_get("", "kind")?;
            let name: String = r.try_get("", "name")?;
            match kind.as_str() {
                "u" => {
                    let user = User {
                        id,
                        username: name,
                        email: r.try_get("", "email")?,
                        language: r.try_get("", "language")?,
                        email_verified: r.try_get("", "email_verified")?,
                        is_active: r.try_get("", "is_active")?,
                        is_staff: r.try_get("", "is_staff")?,
                        is_superuser: r.try_get("", "is_superuser")?,
                        groups: BTreeSet::new(),
                        permissions: BTreeSet::new(),
                    };
                    found = Some((user, r.try_get("", "password_hash")?));
                }
                "g" => {
                    groups.insert(name);
                }
                _ => {
                    perms.insert(name);
                }
            }
        }
        Ok(found.map(|(mut user, hash)| {
            user.groups = groups;
            user.permissions = perms;
            (Arc::new(user), Arc::from(hash))
        }))
    }

    /// Checks credentials. Unknown users cost the same hashing work as wrong passwords, so
    /// timing does not tell which usernames exist. Inactive users never authenticate. Inside a
    /// handler the client's address is the event's, so the login throttle applies as it does
    /// to the login form.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError> {
        let ip = crate::net::current_client().map(|c| c.ip);
        self.authenticate_from(ip, username, password).await
    }

    /// [`Auth::authenticate`] for a request from `ip`: refused with [`AuthError::Throttled`]
    /// after too many failures (per address and username, per address, per username, counted
    /// in the database for every node), with [`AuthError::Busy`] under a flood.
    pub async fn authenticate_from(
        &self,
        ip: Option<std::net::IpAddr>,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError> {
        let Some(attempt) = self.throttle.begin(ip, username).await? else {
            return Err(AuthError::Throttled);
        };
        let row = user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username_key(username)))
            .one(&self.db)
            .await?;
        let user = match row {
            None => {
                let dummy = self
                    .dummy_hash
                    .get_or_try_init(|| hash_password("not a real password"))
                    .await?;
                verify_password(password, dummy).await?;
                None
            }
            Some(row) => {
                if verify_password(password, &row.password_hash).await? && row.is_active {
                    self.load(row.id).await?
                } else {
                    None
                }
            }
        };
        if user.is_some() {
            self.throttle.succeeded(attempt).await?;
        }
        Ok(user)
    }

    /// Sets a new password; every session of the user but the one re-logged-in is void.
    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), AuthError> {
        let row = user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username_key(username)))
            .one(&self.db)
            .await?
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
        validate_password(password, username, row.email.as_deref())?;
        let mut active: user::ActiveModel = row.into();
        active.password_hash = Set(hash_password(password).await?);
        let updated = active.update(&self.db).await?;
        self.users.remove(&updated.id);
        self.told(&[USERS_TABLE]);
        Ok(())
    }

    /// Saves the language `user_id` chose (`None` forgets it): their pages are in it wherever
    /// they log in, unless a `language` cookie says otherwise.
    pub async fn set_language(
        &self,
        user_id: i64,
        language: Option<&str>,
    ) -> Result<(), AuthError> {
        let row = user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AuthError::NoSuchUser(format!("#{user_id}")))?;
        let mut m: user::ActiveModel = row.into();
        m.language = Set(language.map(str::to_owned));
        let updated = m.update(&self.db).await?;
        self.users.remove(&updated.id);
        self.told(&[USERS_TABLE]);
        Ok(())
    }

    /// The id of the user named `username`.
    pub(super) async fn user_id(&self, username: &str) -> Result<i64, AuthError> {
        user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username_key(username)))
            .one(&self.db)
            .await?
            .map(|u| u.id)
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))
    }

    /// Logs `user` in on `session`: a new session id (no fixation), the user's id and password
    /// fingerprint stored, `last_login` updated. The session's data (an anonymous cart) is
    /// kept, unless another user was logged in on it: then it starts empty, as in Django, so
    /// nothing of theirs carries over. Either way its tabs get a new binding, so whoever else
    /// holds the old cookie stops seeing their states (the tabs carry theirs across).
    pub async fn login(&self, session: &Session, user: &User) -> Result<(), AuthError> {
        let hash = user::Entity::find_by_id(user.id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AuthError::NoSuchUser(user.username.clone()))?
            .password_hash;
        let previous = session.get::<i64>(SESSION_USER_ID).await?;
        if previous.is_some_and(|id| id != user.id) {
            session.flush().await?;
        } else {
            crate::tab_binding::rotate(session).await?;
        }
        session.cycle_id().await?;
        session.insert(SESSION_USER_ID, user.id).await?;
        session.insert(SESSION_AUTH_HASH, auth_hash(&hash)).await?;
        user::Entity::update_many()
            .col_expr(
                user::Column::LastLogin,
                sea_orm::sea_query::Expr::value(now()),
            )
            .filter(user::Column::Id.eq(user.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Logs out: the session's data and row are deleted and its cookie cleared. Anything the
    /// session holds afterwards is stored under a new id: a copy of the old cookie never
    /// reaches it (tower-sessions alone would reuse the old id).
    pub async fn logout(&self, session: &Session) -> Result<(), AuthError> {
        session.flush().await?;
        session.cycle_id().await?;
        Ok(())
    }

    /// The user `session` belongs to: anonymous when nobody logged in, the user is gone or
    /// inactive, or its password changed since.
    pub async fn user_of(&self, session: &Session) -> Result<CurrentUser, AuthError> {
        let Some(id) = session.get::<i64>(SESSION_USER_ID).await? else {
            return Ok(CurrentUser::Anonymous);
        };
        let Some((user, hash)) = self.load_row(id).await? else {
            return Ok(CurrentUser::Anonymous);
        };
        let fingerprint = session.get::<String>(SESSION_AUTH_HASH).await?;
        if fingerprint.as_deref() != Some(auth_hash_in(&hash)) || !user.is_active {
            return Ok(CurrentUser::Anonymous);
        }
        if self.confirmation_required() && !user.email_verified {
            return Ok(CurrentUser::Anonymous);
        }
        Ok(CurrentUser::Authenticated(user))
    }
}

fn to_user(m: user::Model, groups: BTreeSet<String>, permissions: BTreeSet<String>) -> User {
    User {
        id: m.id,
        username: m.username,
        email: m.email,
        language: m.language,
        email_verified: m.email_verified,
        is_active: m.is_active,
        is_staff: m.is_staff,
        is_superuser: m.is_superuser,
        groups,
        permissions,
    }
}
