//! Groups and permissions: who is in which group, which permission a user or a group holds,
//! granted and taken back (Django's `user.groups`, `user.user_permissions`, `group.permissions`).
//! Every change drops the users resolved in memory, so the next event sees it.

use sea_orm::{ConnectionTrait, DbBackend};

use super::errors::AuthError;
use super::users::{Auth, GROUPS_TABLE, PERMISSIONS_TABLE, USERS_TABLE};
use crate::db::stmt;

impl Auth {
    /// Puts `username` into group `name`, creating the group when needed.
    pub async fn add_to_group(&self, username: &str, name: &str) -> Result<(), AuthError> {
        let uid = self.user_id(username).await?;
        let gid = self.ensure("ferrule_groups", "name", name).await?;
        self.link("ferrule_user_groups", "user_id", uid, "group_id", gid)
            .await
    }

    /// Grants permission `codename` to `username`.
    pub async fn grant(&self, username: &str, codename: &str) -> Result<(), AuthError> {
        let uid = self.user_id(username).await?;
        let pid = self
            .ensure("ferrule_permissions", "codename", codename)
            .await?;
        self.link(
            "ferrule_user_permissions",
            "user_id",
            uid,
            "permission_id",
            pid,
        )
        .await
    }

    /// Grants permission `codename` to group `name`.
    pub async fn grant_group(&self, name: &str, codename: &str) -> Result<(), AuthError> {
        let gid = self.ensure("ferrule_groups", "name", name).await?;
        let pid = self
            .ensure("ferrule_permissions", "codename", codename)
            .await?;
        self.link(
            "ferrule_group_permissions",
            "group_id",
            gid,
            "permission_id",
            pid,
        )
        .await
    }

    /// The id of the row of `table` whose unique `column` is `value`, inserted if missing
    /// (race-free: a concurrent insert of the same name is not an error).
    async fn ensure(&self, table: &str, column: &str, value: &str) -> Result<i64, AuthError> {
        let backend = self.db.get_database_backend();
        let insert = format!("INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT DO NOTHING");
        let inserted = self
            .db
            .execute_raw(stmt(backend, &insert, vec![value.into()]))
            .await?;
        if inserted.rows_affected() > 0 {
            self.told(&[table]);
        }
        self.find_id(table, column, value)
            .await?
            .ok_or_else(|| AuthError::Invalid(format!("`{value}` could not be stored in {table}")))
    }

    async fn link(
        &self,
        table: &str,
        a: &str,
        a_id: i64,
        b: &str,
        b_id: i64,
    ) -> Result<(), AuthError> {
        let sql = format!("INSERT INTO {table} ({a}, {b}) VALUES (?, ?) ON CONFLICT DO NOTHING");
        self.change_links(&sql, a_id, b_id).await
    }

    /// Takes `username` out of group `name` (nothing happens when they were not in it).
    pub async fn remove_from_group(&self, username: &str, name: &str) -> Result<(), AuthError> {
        let uid = self.user_id(username).await?;
        let Some(gid) = self.find_id("ferrule_groups", "name", name).await? else {
            return Ok(());
        };
        self.unlink("ferrule_user_groups", "user_id", uid, "group_id", gid)
            .await
    }

    /// Takes permission `codename` back from `username` (what its groups grant stays).
    pub async fn revoke(&self, username: &str, codename: &str) -> Result<(), AuthError> {
        let uid = self.user_id(username).await?;
        let Some(pid) = self
            .find_id("ferrule_permissions", "codename", codename)
            .await?
        else {
            return Ok(());
        };
        self.unlink(
            "ferrule_user_permissions",
            "user_id",
            uid,
            "permission_id",
            pid,
        )
        .await
    }

    /// Takes permission `codename` back from group `name`.
    pub async fn revoke_group(&self, name: &str, codename: &str) -> Result<(), AuthError> {
        let (Some(gid), Some(pid)) = (
            self.find_id("ferrule_groups", "name", name).await?,
            self.find_id("ferrule_permissions", "codename", codename)
                .await?,
        ) else {
            return Ok(());
        };
        self.unlink(
            "ferrule_group_permissions",
            "group_id",
            gid,
            "permission_id",
            pid,
        )
        .await
    }

    /// Every group's name, in order.
    pub async fn group_names(&self) -> Result<Vec<String>, AuthError> {
        self.names("SELECT name FROM ferrule_groups ORDER BY name", "name")
            .await
    }

    /// Every permission's code, in order.
    pub async fn permission_codes(&self) -> Result<Vec<String>, AuthError> {
        self.names(
            "SELECT codename FROM ferrule_permissions ORDER BY codename",
            "codename",
        )
        .await
    }

    /// Deletes group `name`: its members leave it and lose what it granted.
    pub async fn delete_group(&self, name: &str) -> Result<(), AuthError> {
        let backend = self.db.get_database_backend();
        // The links go with the group (the tables cascade).
        self.db
            .execute_raw(stmt(
                backend,
                "DELETE FROM ferrule_groups WHERE name = ?",
                vec![name.into()],
            ))
            .await?;
        self.users.clear();
        self.told(&[GROUPS_TABLE, USERS_TABLE]);
        Ok(())
    }

    /// Makes group `name` (nothing happens when it exists); an empty name is refused.
    pub async fn create_group(&self, name: &str) -> Result<(), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 150 {
            return Err(AuthError::Invalid(
                "a group's name must be 1 to 150 characters".into(),
            ));
        }
        self.ensure("ferrule_groups", "name", name).await.map(drop)
    }

    /// Makes permission `codename` (nothing happens when it exists), so it can be granted from
    /// a list; an empty code is refused.
    pub async fn create_permission(&self, codename: &str) -> Result<(), AuthError> {
        let codename = codename.trim();
        if codename.is_empty() || codename.chars().count() > 150 || codename.contains(',') {
            return Err(AuthError::Invalid(
                "a permission's code must be 1 to 150 characters, without commas".into(),
            ));
        }
        self.ensure("ferrule_permissions", "codename", codename)
            .await
            .map(drop)
    }

    /// Deletes permission `codename`: every user and group holding it loses it.
    pub async fn delete_permission(&self, codename: &str) -> Result<(), AuthError> {
        let backend = self.db.get_database_backend();
        // The links go with the permission (the tables cascade).
        self.db
            .execute_raw(stmt(
                backend,
                "DELETE FROM ferrule_permissions WHERE codename = ?",
                vec![codename.into()],
            ))
            .await?;
        self.users.clear();
        self.told(&[PERMISSIONS_TABLE, GROUPS_TABLE, USERS_TABLE]);
        Ok(())
    }

    /// The permissions granted to `username` directly (not through its groups), in order.
    pub async fn own_permissions(&self, username: &str) -> Result<Vec<String>, AuthError> {
        let uid = self.user_id(username).await?;
        self.names_of(
            "SELECT p.codename AS name FROM ferrule_user_permissions up \
             JOIN ferrule_permissions p ON p.id = up.permission_id \
             WHERE up.user_id = ? ORDER BY p.codename",
            uid,
        )
        .await
    }

    /// The permissions group `name` grants, in order (none when there is no such group).
    pub async fn group_permissions(&self, name: &str) -> Result<Vec<String>, AuthError> {
        let Some(gid) = self.find_id("ferrule_groups", "name", name).await? else {
            return Ok(Vec::new());
        };
        self.names_of(
            "SELECT p.codename AS name FROM ferrule_group_permissions gp \
             JOIN ferrule_permissions p ON p.id = gp.permission_id \
             WHERE gp.group_id = ? ORDER BY p.codename",
            gid,
        )
        .await
    }

    /// The `name` column of `sql`'s rows, `sql` taking one id.
    async fn names_of(&self, sql: &str, id: i64) -> Result<Vec<String>, AuthError> {
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(stmt(backend, sql, vec![id.into()]))
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String>("", "name"))
            .collect::<Result<_, _>>()?)
    }

    async fn names(&self, sql: &str, column: &str) -> Result<Vec<String>, AuthError> {
        let backend = self.db.get_database_backend();
        let rows = self.db.query_all_raw(stmt(backend, sql, vec![])).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String>("", column))
            .collect::<Result<_, _>>()?)
    }

    /// The id of the row of `table` whose unique `column` is `value`, if there is one.
    async fn find_id(
        &self,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<Option<i64>, AuthError> {
        let backend: DbBackend = self.db.get_database_backend();
        let select = format!("SELECT id FROM {table} WHERE {column} = ?");
        let row = self
            .db
            .query_one_raw(stmt(backend, &select, vec![value.into()]))
            .await?;
        Ok(row.map(|r| r.try_get("", "id")).transpose()?)
    }

    async fn unlink(
        &self,
        table: &str,
        a: &str,
        a_id: i64,
        b: &str,
        b_id: i64,
    ) -> Result<(), AuthError> {
        let sql = format!("DELETE FROM {table} WHERE {a} = ? AND {b} = ?");
        self.change_links(&sql, a_id, b_id).await
    }

    /// Runs `sql` on a link table with the two ids, then drops the users kept for events:
    /// group and permission changes can touch many users, so they start afresh.
    async fn change_links(&self, sql: &str, a_id: i64, b_id: i64) -> Result<(), AuthError> {
        let backend = self.db.get_database_backend();
        self.db
            .execute_raw(stmt(backend, sql, vec![a_id.into(), b_id.into()]))
            .await?;
        self.users.clear();
        // A link shows in the lists of both its ends: a user's groups, a group's members.
        self.told(&[USERS_TABLE, GROUPS_TABLE]);
        Ok(())
    }
}
