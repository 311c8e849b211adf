//! Short-lived records every node shares, in the app's database: counters over a time window
//! (login throttling) and single-use tickets (the codes that hand a socket's login to the
//! browser). In the database rather than in each process, so a deployment of several nodes
//! behind a load balancer without sticky sessions counts and redeems in one place.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use super::stmt;

/// Where expiring records read the time: the system clock, or one a test moves by hand.
#[derive(Clone, Default)]
pub(crate) struct Clock(Option<std::sync::Arc<std::sync::atomic::AtomicI64>>);

impl Clock {
    /// A clock that stands at `secs` (Unix seconds) until [`Clock::advance`]d.
    #[cfg(test)]
    pub(crate) fn manual(secs: i64) -> Self {
        Self(Some(std::sync::Arc::new(
            std::sync::atomic::AtomicI64::new(secs),
        )))
    }

    /// Moves a manual clock on by `secs`.
    #[cfg(test)]
    pub(crate) fn advance(&self, secs: i64) {
        if let Some(t) = &self.0 {
            t.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Seconds since the Unix epoch.
    pub(crate) fn now(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(std::sync::atomic::Ordering::SeqCst),
            None => super::now(),
        }
    }
}

/// The table, made by the runtime's second migration.
pub(crate) const TABLE: &str = "ferrule_expiring";

/// Counters and tickets with an expiry, on the app's database connection.
#[derive(Clone)]
pub(crate) struct Expiring {
    db: DatabaseConnection,
    clock: Clock,
}

impl Expiring {
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Clock::default(),
        }
    }

    /// The same records read against `clock` (tests of expiry).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// For unit tests: counters in a fresh in-memory SQLite database with the runtime's
    /// tables, on a clock that moves only when the test advances it.
    #[cfg(test)]
    pub(crate) async fn in_memory() -> (Self, Clock) {
        use sea_orm_migration::MigratorTrait;
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrations::Migrator::up(&db, None)
            .await
            .unwrap();
        let clock = Clock::manual(1_000_000);
        (Self::new(db).with_clock(clock.clone()), clock)
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Adds one to each counter of `names` in one statement (each row atomically: concurrent
    /// bumps each see their own count) and returns their new values in `names`' order; a counter
    /// older than `window` starts again from one.
    pub(crate) async fn bump_all(
        &self,
        names: &[&str],
        window: Duration,
    ) -> Result<Vec<i64>, DbErr> {
        let now = self.now();
        let until = now + window.as_secs() as i64;
        let rows = vec!["(?, 1, NULL, ?)"; names.len()].join(", ");
        let sql = format!(
            "INSERT INTO {TABLE} (name, hits, value, expires) VALUES {rows} \
             ON CONFLICT (name) DO UPDATE SET \
             hits = CASE WHEN {TABLE}.expires <= ? THEN 1 ELSE {TABLE}.hits + 1 END, \
             expires = CASE WHEN {TABLE}.expires <= ? THEN ? ELSE {TABLE}.expires END \
             RETURNING name, hits"
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(2 * names.len() + 3);
        for name in names {
            values.push((*name).into());
            values.push(until.into());
        }
        values.extend([now.into(), now.into(), until.into()]);
        let backend = self.db.get_database_backend();
        let mut found = std::collections::HashMap::new();
        for row in self.db.query_all_raw(stmt(backend, &sql, values)).await? {
            found.insert(
                row.try_get::<String>("", "name")?,
                row.try_get::<i64>("", "hits")?,
            );
        }
        names
            .iter()
            .map(|n| {
                found
                    .get(*n)
                    .copied()
                    .ok_or_else(|| DbErr::RecordNotFound(format!("counter `{n}`")))
            })
            .collect()
    }

    /// Takes one back from each live counter of `names` (never below zero).
    pub(crate) async fn lower_all(&self, names: &[&str]) -> Result<(), DbErr> {
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!(
            "UPDATE {TABLE} SET hits = hits - 1 WHERE hits > 0 AND expires > ? AND name IN ({marks})"
        );
        let mut values: Vec<sea_orm::Value> = vec![self.now().into()];
        values.extend(names.iter().map(|n| (*n).into()));
        let backend = self.db.get_database_backend();
        self.db.execute_raw(stmt(backend, &sql, values)).await?;
        Ok(())
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
        let until = self.now() + ttl.as_secs() as i64;
        self.db
            .execute_raw(stmt(
                backend,
                &sql,
                vec![name.into(), value.into(), until.into()],
            ))
            .await?;
        Ok(())
    }

    /// Reads ticket `name` and leaves it; `None` when unknown, used or expired.
    pub(crate) async fn peek(&self, name: &str) -> Result<Option<String>, DbErr> {
        let sql = format!("SELECT value FROM {TABLE} WHERE name = ? AND expires > ?");
        let backend = self.db.get_database_backend();
        let Some(row) = self
            .db
            .query_one_raw(stmt(backend, &sql, vec![name.into(), self.now().into()]))
            .await?
        else {
            return Ok(None);
        };
        row.try_get::<Option<String>>("", "value")
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
        if expires <= self.now() {
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
            .execute_raw(stmt(backend, &sql, vec![self.now().into()]))
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
