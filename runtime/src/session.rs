//! Sessions in the app's database: [`SeaOrmStore`] is a `tower_sessions::SessionStore` on sea-orm
//! sharing the app's pool, plus the session middleware that puts a [`Session`] on every request
//! and event.
//!
//! Expired rows are ignored on load and removed by a sweeper task for the server's lifetime.
//!
//! A deleted session (a login or logout gives the session a new id and deletes the old one)
//! leaves an *ended* row for [`ENDED_KEPT`]: it loads as no session, but the socket handshake
//! can tell a cookie the browser is about to replace from one that names nothing.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Loaded, TtlCache};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error as StoreError, Result as StoreResult};
pub use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

use http::{HeaderValue, header};

use crate::db::entities::session as rows;
use crate::middleware::Response;
use crate::middleware::{self, Named};

/// How long a deleted session is remembered as ended ([`SeaOrmStore::ended_lately`]).
pub const ENDED_KEPT: Duration = Duration::from_secs(60);

/// The data of an ended session's row: no session's data (always a JSON object) is empty.
const ENDED: &str = "";

/// Name of the session middleware in the chain.
pub const SESSION_MIDDLEWARE: &str = "session";

/// How many ids handed out with pages are remembered ([`SeaOrmStore::hand_out`]), and how long.
const HANDED_OUT_KEPT: (usize, Duration) = (1 << 16, Duration::from_secs(600));

/// A `SessionStore` on the app's sea-orm connection.
#[derive(Clone)]
pub struct SeaOrmStore {
    db: DatabaseConnection,
    cache: Arc<TtlCache<Id, Record>>,
    handed_out: Arc<HandedOut>,
}

/// The session ids this process handed out with pages and has not stored. Bounded in count
/// and age, the oldest going first: under a flood of page loads, or when the page came from
/// another node, the browser's socket gets a fresh session (and cookie) instead.
#[derive(Default)]
struct HandedOut {
    ids: std::sync::Mutex<HandedOutIds>,
}

#[derive(Default)]
struct HandedOutIds {
    order: std::collections::VecDeque<(Id, std::time::Instant)>,
    set: std::collections::HashSet<Id>,
}

impl HandedOut {
    fn ids(&self) -> std::sync::MutexGuard<'_, HandedOutIds> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for SeaOrmStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaOrmStore").finish_non_exhaustive()
    }
}

impl SeaOrmStore {
    /// A store on `db` (run the runtime's migrations first), without a cache.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            cache: Arc::new(TtlCache::new(Duration::ZERO)),
            handed_out: Arc::default(),
        }
    }

    /// A fresh session id to hand a browser with a page, stored nowhere: until a write stores
    /// it, it loads as an empty session, so a page load costs no row and the page's socket
    /// and forms share the session the browser holds. Unknown ids a client makes up load as
    /// no session, as ever: no client picks its own session id.
    pub fn hand_out(&self) -> Id {
        let id = Id::default();
        let mut ids = self.handed_out.ids();
        while ids.order.len() >= HANDED_OUT_KEPT.0
            || ids
                .order
                .front()
                .is_some_and(|(_, at)| at.elapsed() > HANDED_OUT_KEPT.1)
        {
            if let Some((old, _)) = ids.order.pop_front() {
                ids.set.remove(&old);
            }
        }
        ids.order.push_back((id, std::time::Instant::now()));
        ids.set.insert(id);
        id
    }

    /// Whether `id` was handed out by [`SeaOrmStore::hand_out`] and is still remembered.
    pub fn handed_out(&self, id: &Id) -> bool {
        self.handed_out.ids().set.contains(id)
    }

    /// Keeps loaded sessions in memory for `ttl`: saves and deletes through this store update
    /// the cache at once; changes by other processes can go unseen for up to `ttl`.
    pub fn with_cache(self, ttl: Duration) -> Self {
        self.cache.set_ttl(ttl);
        self
    }

    /// Whether session `id` was deleted within the last [`ENDED_KEPT`]: a browser still sending
    /// its cookie is about to get the cookie of the session that replaced it (or just got it).
    pub async fn ended_lately(&self, id: &Id) -> Result<bool, sea_orm::DbErr> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ended = rows::Entity::find_by_id(id.to_string())
            .filter(rows::Column::Data.eq(ENDED))
            .filter(rows::Column::ExpiryDate.gt(now))
            .one(&self.db)
            .await?;
        Ok(ended.is_some())
    }

    /// Stores `record` under its id unless a live or lately ended session holds that id (a tab
    /// of the same browser stored it first); returns whether it was stored. For ids handed out
    /// with a page ([`SeaOrmStore::hand_out`]), so two tabs storing one at once agree.
    pub async fn adopt(&self, record: &Record) -> Result<bool, sea_orm::DbErr> {
        let id = record.id.to_string();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        // A row of a session over long ago, not swept yet, gives way.
        rows::Entity::delete_many()
            .filter(rows::Column::Id.eq(id.clone()))
            .filter(rows::Column::ExpiryDate.lte(now))
            .exec(&self.db)
            .await?;
        let data = serde_json::to_string(&record.data)
            .map_err(|e| sea_orm::DbErr::Custom(format!("session data: {e}")))?;
        let row = rows::ActiveModel {
            id: Set(id),
            data: Set(data),
            expiry_date: Set(record.expiry_date.unix_timestamp()),
        };
        let stored = rows::Entity::insert(row)
            .on_conflict_do_nothing_on([rows::Column::Id])
            .exec_without_returning(&self.db)
            .await?;
        Ok(matches!(stored, sea_orm::TryInsertResult::Inserted(n) if n > 0))
    }

    /// Writes session `id`'s row, whether or not it has one.
    async fn upsert(&self, id: &Id, data: String, expiry: i64) -> Result<(), sea_orm::DbErr> {
        let row = rows::ActiveModel {
            id: Set(id.to_string()),
            data: Set(data),
            expiry_date: Set(expiry),
        };
        rows::Entity::insert(row)
            .on_conflict(
                OnConflict::column(rows::Column::Id)
                    .update_columns([rows::Column::Data, rows::Column::ExpiryDate])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes expired sessions; returns how many went.
    pub async fn delete_expired(&self) -> Result<u64, sea_orm::DbErr> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let res = rows::Entity::delete_many()
            .filter(rows::Column::ExpiryDate.lt(now))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    /// Deletes expired sessions every `period` until `cancel` fires (the runtime registers this
    /// as a background task of the server).
    pub async fn sweep_until(&self, period: Duration, cancel: tokio_util::sync::CancellationToken) {
        crate::lifespan::every(period, cancel, || async {
            match self.delete_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "expired sessions swept"),
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
            true
        })
        .await;
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SeaOrmStore {
    /// The session `id` as its row has it (unexpired at `now`, Unix seconds), uncached.
    async fn query(&self, id: &Id, now: i64) -> StoreResult<Loaded<Record>> {
        let row = rows::Entity::find_by_id(id.to_string())
            .filter(rows::Column::ExpiryDate.gt(now))
            .one(&self.db)
            .await
            .map_err(backend)?;
        let row = match row {
            Some(row) if row.data == ENDED => return Ok(Loaded::Missing),
            Some(row) => row,
            // Handed out with a page and not stored yet: an empty session, not cached (a
            // write stores it).
            None if self.handed_out(id) => {
                return Ok(Loaded::Pass(Record {
                    id: *id,
                    data: Default::default(),
                    expiry_date: OffsetDateTime::now_utc() + HANDED_OUT_KEPT.1,
                }));
            }
            None => return Ok(Loaded::Missing),
        };
        let data =
            serde_json::from_str(&row.data).map_err(|e| StoreError::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(row.expiry_date)
            .map_err(|e| StoreError::Decode(e.to_string()))?;
        let record = Record {
            id: *id,
            data,
            expiry_date,
        };
        Ok(Loaded::Keep(record))
    }
}

#[async_trait::async_trait]
impl SessionStore for SeaOrmStore {
    async fn save(&self, record: &Record) -> StoreResult<()> {
        let data =
            serde_json::to_string(&record.data).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.upsert(&record.id, data, record.expiry_date.unix_timestamp())
            .await
            .map_err(backend)?;
        self.cache.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> StoreResult<Option<Record>> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if let Some(hit) = self.cache.get(id) {
            if hit.expiry_date.unix_timestamp() > now {
                return Ok(Some(hit));
            }
            self.cache.remove(id);
        }
        self.cache
            .get_or_load(id, async || self.query(id, now).await)
            .await
    }

    /// Ends the session: its data goes at once, its row stays as ended for [`ENDED_KEPT`]
    /// (written even when it had none: an id handed out with a page, ended by a login before
    /// anything stored it).
    async fn delete(&self, id: &Id) -> StoreResult<()> {
        self.cache.remove(id);
        self.handed_out.ids().set.remove(id);
        let until = OffsetDateTime::now_utc().unix_timestamp() + ENDED_KEPT.as_secs() as i64;
        self.upsert(id, ENDED.to_owned(), until)
            .await
            .map_err(backend)
    }
}

/// How the session cookie is set.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Cookie name.
    pub cookie_name: Cow<'static, str>,
    /// Mark the cookie `Secure` (HTTPS only).
    pub secure: bool,
    /// Idle time after which a session expires.
    pub idle: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: Cow::Borrowed("ferrule_session"),
            secure: false,
            idle: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// The `Set-Cookie` value that puts session `id` in the browser (a browser-session cookie; the
/// session's idle expiry is kept on the server), or clears it with `None`.
pub(crate) fn set_cookie(name: &str, id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!("{name}={id}; HttpOnly; SameSite=Lax; Path=/{secure}"),
        None => format!("{name}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}"),
    }
}

/// Put on a response, the session cookie it must end with: the session middleware may have
/// added its own (a removal, for a request whose session is gone), and this one wins.
#[derive(Clone, Debug)]
pub(crate) struct FinalSessionCookie(pub(crate) HeaderValue);

/// Outermost answer step: applies [`FinalSessionCookie`], dropping every other `Set-Cookie`
/// of the session cookie `name`.
pub(crate) async fn settle_session_cookie(name: Arc<str>, mut resp: Response) -> Response {
    let Some(FinalSessionCookie(last)) = resp.extensions_mut().remove() else {
        return resp;
    };
    let prefix = format!("{name}=");
    let others: Vec<HeaderValue> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !v.as_bytes().starts_with(prefix.as_bytes()))
        .cloned()
        .collect();
    let headers = resp.headers_mut();
    headers.remove(header::SET_COOKIE);
    for v in others {
        headers.append(header::SET_COOKIE, v);
    }
    headers.append(header::SET_COOKIE, last);
    resp
}

/// The session middleware: HttpOnly, SameSite=Lax cookie, sessions in `store`. It belongs to the
/// auth tier, so `auth_only` states get sessions too.
pub fn session_middleware(store: SeaOrmStore, config: &SessionConfig) -> Named {
    let idle = tower_sessions::cookie::time::Duration::seconds(config.idle.as_secs() as i64);
    let layer = SessionManagerLayer::new(store)
        .with_name(config.cookie_name.clone())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure)
        .with_expiry(Expiry::OnInactivity(idle));
    middleware::layer(SESSION_MIDDLEWARE, layer).auth_tier()
}
