//! Accounts as a whole, for whoever manages them (the `createsuperuser` command, an admin page):
//! listing and searching them, the active, staff and superuser flags, deleting one.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::errors::AuthError;
use super::users::{Auth, username_key};
use crate::db::entities::user;

/// One account in a list: what a table of users shows, without groups, permissions or the
/// password hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSummary {
    /// Primary key.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// E-mail address, if any.
    pub email: Option<String>,
    /// Whether the account can log in.
    pub is_active: bool,
    /// May use staff pages.
    pub is_staff: bool,
    /// Holds every permission.
    pub is_superuser: bool,
    /// Unix seconds of account creation.
    pub date_joined: i64,
    /// Unix seconds of the last login.
    pub last_login: Option<i64>,
}

/// A page of [`Auth::list_users`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The accounts on this page, by username.
    pub users: Vec<UserSummary>,
    /// How many accounts match, on every page.
    pub total: u64,
}

impl Auth {
    /// Accounts whose username or e-mail contains `search` (any case; all when empty), by
    /// username, `limit` of them from the `offset`th.
    pub async fn list_users(
        &self,
        search: &str,
        offset: u64,
        limit: u64,
    ) -> Result<UserPage, AuthError> {
        let mut query = user::Entity::find();
        let search = search.trim();
        if !search.is_empty() {
            query = query.filter(
                Condition::any()
                    .add(user::Column::UsernameKey.contains(username_key(search)))
                    .add(user::Column::Email.contains(search)),
            );
        }
        let total = query.clone().count(&self.db).await?;
        let rows = query
            .order_by_asc(user::Column::UsernameKey)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        let users = rows
            .into_iter()
            .map(|m| UserSummary {
                id: m.id,
                username: m.username,
                email: m.email,
                is_active: m.is_active,
                is_staff: m.is_staff,
                is_superuser: m.is_superuser,
                date_joined: m.date_joined,
                last_login: m.last_login,
            })
            .collect();
        Ok(UserPage { users, total })
    }

    /// Sets the active flag (inactive users count as anonymous at once).
    pub async fn set_active(&self, username: &str, active: bool) -> Result<(), AuthError> {
        self.update_user(username, |m| m.is_active = Set(active))
            .await
    }

    /// Sets whether `username` may use staff pages.
    pub async fn set_staff(&self, username: &str, staff: bool) -> Result<(), AuthError> {
        self.update_user(username, |m| m.is_staff = Set(staff))
            .await
    }

    /// Sets whether `username` holds every permission.
    pub async fn set_superuser(&self, username: &str, superuser: bool) -> Result<(), AuthError> {
        self.update_user(username, |m| m.is_superuser = Set(superuser))
            .await
    }

    /// Deletes the account `username`, its group memberships and permissions with it; its
    /// sessions count as anonymous from their next request or event on.
    pub async fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let id = self.user_id(username).await?;
        user::Entity::delete_by_id(id).exec(&self.db).await?;
        self.users.remove(&id);
        self.told(&[super::USERS_TABLE]);
        Ok(())
    }

    async fn update_user(
        &self,
        username: &str,
        change: impl FnOnce(&mut user::ActiveModel),
    ) -> Result<(), AuthError> {
        let row = user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username_key(username)))
            .one(&self.db)
            .await?
            .ok_or_else(|| AuthError::NoSuchUser(username.to_owned()))?;
        let mut m: user::ActiveModel = row.into();
        change(&mut m);
        let updated = m.update(&self.db).await?;
        self.users.remove(&updated.id);
        self.told(&[super::USERS_TABLE]);
        Ok(())
    }
}
