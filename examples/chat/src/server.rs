//! The server side of the chat: its tables, the handlers, and two tasks (the presence sweeper
//! and the bot) that speak to rooms from outside any handler.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrule::db::sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
};
use ferrule::lifespan::OnPanic;
use ferrule::rooms::Rooms;
use ferrule::{App, ClientCommand};
use serde_json::json;

use crate::{ChatState, MESSAGE, PRESENCE};

pub mod tables;

use tables::{member, message};

/// How the app's tasks behave; tests shorten the times.
#[derive(Clone, Debug)]
pub struct ChatOptions {
    /// A tab not heard from for this long leaves its room.
    pub presence_ttl: Duration,
    /// How often the sweeper looks for such tabs.
    pub sweep_every: Duration,
    /// How often the bot posts in `lobby` (`None`: never).
    pub bot_every: Option<Duration>,
}

impl Default for ChatOptions {
    fn default() -> Self {
        Self {
            presence_ttl: Duration::from_secs(60),
            sweep_every: Duration::from_secs(5),
            bot_every: Some(Duration::from_secs(60)),
        }
    }
}

/// How many messages a tab gets when it joins.
pub const HISTORY: u64 = 50;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The socket.io-level room a chat room is (ours are prefixed so names cannot clash).
pub(crate) fn room_key(room: &str) -> String {
    format!("chat:{room}")
}

/// The names in `room`, sorted, once each.
pub(crate) async fn members_of(
    conn: &DatabaseConnection,
    room: &str,
) -> Result<Vec<String>, DbErr> {
    let mut names: Vec<String> = member::Entity::find()
        .filter(member::Column::Room.eq(room))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

pub(crate) fn presence(room: &str, members: &[String]) -> ClientCommand {
    ClientCommand::new(PRESENCE, json!({ "room": room, "members": members }))
}

/// Stores a message and returns it as the client event.
pub(crate) async fn post(
    conn: &DatabaseConnection,
    room: &str,
    author: &str,
    text: &str,
) -> Result<ClientCommand, DbErr> {
    message::ActiveModel {
        room: ActiveValue::Set(room.to_owned()),
        author: ActiveValue::Set(author.to_owned()),
        text: ActiveValue::Set(text.to_owned()),
        at_ms: ActiveValue::Set(now_ms()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(ClientCommand::new(
        MESSAGE,
        json!({ "author": author, "text": text }),
    ))
}

pub(crate) fn check(
    what: &str,
    value: &str,
    max: usize,
    room: bool,
) -> Result<String, ferrule::Error> {
    let value = value.trim();
    let ok_chars = !room
        || value
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if value.is_empty() || value.chars().count() > max || !ok_chars {
        let rule = if room {
            "letters, digits, - and _"
        } else {
            "any characters"
        };
        return Err(ferrule::Error::bad_request(format!(
            "A {what} has 1 to {max} characters ({rule})."
        )));
    }
    Ok(value.to_owned())
}

// ANCHOR: sweep
/// One sweep: drops members not heard from within `ttl` and tells each room that lost one.
pub async fn sweep(
    conn: &DatabaseConnection,
    rooms: &Rooms,
    ttl: Duration,
) -> Result<(), ferrule::Error> {
    let cutoff = now_ms() - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let gone = member::Entity::find()
        .filter(member::Column::SeenMs.lt(cutoff))
        .all(conn)
        .await?;
    if gone.is_empty() {
        return Ok(());
    }
    member::Entity::delete_many()
        .filter(member::Column::SeenMs.lt(cutoff))
        .exec(conn)
        .await?;
    let mut touched: Vec<String> = gone.into_iter().map(|m| m.room).collect();
    touched.sort();
    touched.dedup();
    for room in touched {
        let members = members_of(conn, &room).await?;
        rooms
            .broadcast(&room_key(&room), vec![presence(&room, &members)])
            .await?;
    }
    Ok(())
}
// ANCHOR_END: sweep

/// The bot's message number `n` in `lobby`.
pub async fn bot_post(
    conn: &DatabaseConnection,
    rooms: &Rooms,
    n: u64,
) -> Result<(), ferrule::Error> {
    let text = format!("Reminder #{n}: be kind, and say hello to whoever joins.");
    let event = post(conn, "lobby", "bot", &text).await?;
    rooms.broadcast(&room_key("lobby"), vec![event]).await
}

/// The chat on database `db`, with its two tasks. For several processes, add
/// `state_manager(RedisStateManager)` and `broadcast_over_redis(..)` (as `main.rs` does when
/// `REDIS_URL` is set): presence and history live in the database every process shares.
pub fn app(db: DatabaseConnection, options: ChatOptions) -> App {
    let site = ferrule::ssr::site_options("chat");
    let app = App::new()
        .database(db.clone())
        .migrations::<tables::Migrator>()
        .state::<ChatState>();
    // ANCHOR: sweeper_task
    let rooms = app.rooms();
    let (conn, ttl, every) = (db.clone(), options.presence_ttl, options.sweep_every);
    let app = app.task("presence sweeper", OnPanic::Restart, move |cancel| {
        let (conn, rooms) = (conn.clone(), rooms.clone());
        async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(every) => {
                        if let Err(e) = sweep(&conn, &rooms, ttl).await {
                            tracing::warn!(error = %e, "presence sweep failed");
                        }
                    }
                }
            }
        }
    });
    // ANCHOR_END: sweeper_task
    let app = match options.bot_every {
        Some(every) => {
            let rooms = app.rooms();
            app.task("bot", OnPanic::Restart, move |cancel| {
                let (conn, rooms) = (db.clone(), rooms.clone());
                async move {
                    let mut n = 0;
                    loop {
                        tokio::select! {
                            () = cancel.cancelled() => break,
                            () = tokio::time::sleep(every) => {
                                n += 1;
                                if let Err(e) = bot_post(&conn, &rooms, n).await {
                                    tracing::warn!(error = %e, "the bot could not post");
                                }
                            }
                        }
                    }
                }
            })
        }
        None => app,
    };
    app.merge(ferrule::ssr::pages(
        site,
        ferrule::ssr::shell("Chat", crate::Root),
        crate::Root,
    ))
}
