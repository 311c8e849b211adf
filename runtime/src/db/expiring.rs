//! Short-lived records every node shares, in the app's database: counters over a time window
//! (login throttling) and single-use tickets (the codes that hand a socket's login to the
//! browser). In the database rather than in each process, so a deployment of several nodes
//! behind a load balancer without sticky sessions counts and redeems in one place.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use super::{now, stmt};

/// The table, made by the runtime's second migration.
pub(crate) const TABLE: &str = "ferrule_expiring";

/// Counters and tickets with an expiry, on the app's database connection.
#[derive(Clone)]
pub(crate) struct Expiring {
    db: DatabaseConnection,
}

impl Expiring {
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Adds one to counter `name` and returns its new value; a counter older than `window`
    /// starts again from one.
    pub(crate) async fn bump(&self, name: &str, window: Duration) -> Result<i64, DbErr> {
        let now = now();
        let until = now + window.as_secs() as i64;
        let sql = format!(
            "INSERT INTO {TABLE} (name, hits, value, expires) VALUES (?, 1, NULL, ?) \
             ON CONFLICT (name) DO UPDATE SET \
             hits = CASE WHEN {TABLE}.expires <= ? THEN 1 ELSE {TABLE}.hits + 1 END, \
             expires = CASE WHEN {TABLE}.expires <= ? THEN ? ELSE {TABLE}.expires END \
             RETURNING hits"
        );
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(stmt(
                backend,
                &sql,
                vec![
                    name.into(),
                    until.into(),
                    now.into(),
                    now.into(),
                    until.into(),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("counter `{name}`")))?;
        row.try_get::<i64>("", "hits")
    }

    /// The values of counters `names`, in their order (zero when absent or expired), in one
    /// query.
    pub(crate) async fn hits(&self, names: &[&str]) -> Result<Vec<i64>, DbErr> {
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!("SELECT name, hits FROM {TABLE} WHERE expires > ? AND name IN ({marks})");
        let mut values: Vec<sea_orm::Value> = vec![now().into()];
        values.extend(names.iter().map(|n| (*n).into()));
        let backend = self.db.get_database_backend();
        let rows = self.db.query_all_raw(stmt(backend, &sql, values)).await?;
        let mut found = std::collections::HashMap::new();
        for row in rows {
            found.insert(
                row.try_get::<String>("", "name")?,
                row.try_get::<i64>("", "hits")?,
            );
        }
        Ok(names
            .iter()
            .map(|n| found.get(*n).copied().unwrap_or(0))
            .collect())
    }

    /// Removes record `name`.
    pub(crate) async fn forget(&self, name: &str) -> Result<(), DbErr> {
        let sql = format!("DELETE FROM {TABLE} WHERE name = ?");
        let backend = self.db.get_database_backend();
        self.db
            .execute_raw(stmt(backend, &sql, vec![name.into()]))
            .await?;
        Ok(())
    }

    /// Stores ticket `name` holding `value` for `ttl`.
    pub(crate) async fn put(&self, name: &str, value: &str, ttl: Duration) -> Result<(), DbErr> {
        let sql = format!(
            "INSERT INTO {TABLE} (name, hits, value, expires) VALUES (?, 0, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET hits = 0, value = excluded.value, \
             expires = excluded.expires"
        );
        let backend = self.db.get_database_backend();
        let until = now() + ttl.as_secs() as i64;
        self.db
            .execute_raw(stmt(
                backend,
                &sql,
                vec![name.into(), value.into(), until.into()],
            ))
            .await?;
        Ok(())
    }

    /// Takes ticket `name`: its value, once (the row goes in the same statement, so two nodes
    /// redeeming it at once cannot both succeed); `None` when unknown, used or expired.
    pub(crate) async fn take(&self, name: &str) -> Result<Option<String>, DbErr> {
        let sql = format!("DELETE FROM {TABLE} WHERE name = ? RETURNING value, expires");
        let backend = self.db.get_database_backend();
        let Some(row) = self
            .db
            .query_one_raw(stmt(backend, &sql, vec![name.into()]))
            .await?
        else {
            return Ok(None);
        };
        let expires: i64 = row.try_get("", "expires")?;
        if expires <= now() {
            return Ok(None);
        }
        row.try_get::<Option<String>>("", "value")
    }

    /// Deletes expired records; returns how many went.
    pub(crate) async fn delete_expired(&self) -> Result<u64, DbErr> {
        let sql = format!("DELETE FROM {TABLE} WHERE expires <= ?");
        let backend = self.db.get_database_backend();
        let done = self
            .db
            .execute_raw(stmt(backend, &sql, vec![now().into()]))
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes expired records every `period` until `cancel` fires (a background task of the
    /// server).
    pub(crate) async fn sweep_until(
        &self,
        period: Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        crate::lifespan::every(period, cancel, || async {
            if let Err(e) = self.delete_expired().await {
                tracing::warn!(error = %e, "sweeping expired codes and counters failed");
            }
            true
        })
        .await;
    }
}
