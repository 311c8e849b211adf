//! The chat's handlers, shared by the server and the browser: the page sends the actions
//! `#[ferrule::state]` writes (`Join { room, name }`, `Say { text }`, `Leave`, `Here`); the
//! server build alone compiles their bodies, with the database.

use crate::ChatState;
#[cfg(feature = "ssr")]
use crate::Message;
#[cfg(feature = "ssr")]
use crate::server::tables::{member, message};
#[cfg(feature = "ssr")]
use crate::server::{HISTORY, check, members_of, now_ms, post, presence, room_key};
#[cfg(feature = "ssr")]
use ferrule::EventContext;
#[cfg(feature = "ssr")]
use ferrule::db::sea_orm::{
    self, ActiveValue, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

#[ferrule::state]
impl ChatState {
    // ANCHOR: join_say
    /// Into `room` (1 to 32 letters, digits, `-` or `_`) as `name` (1 to 32 characters), out of
    /// the room the tab was in.
    pub async fn join(
        &mut self,
        ctx: EventContext,
        room: String,
        name: String,
    ) -> Result<(), ferrule::Error> {
        let room = check("room", &room, 32, true)?;
        let name = check("name", &name, 32, false)?;
        let conn = ctx.db()?;
        if !self.room.is_empty() && self.room != room {
            self.leave(ctx.clone()).await?;
        }
        let row = member::ActiveModel {
            token: ActiveValue::Set(ctx.token().to_owned()),
            room: ActiveValue::Set(room.clone()),
            name: ActiveValue::Set(name.clone()),
            seen_ms: ActiveValue::Set(now_ms()),
        };
        member::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(member::Column::Token)
                    .update_columns([
                        member::Column::Room,
                        member::Column::Name,
                        member::Column::SeenMs,
                    ])
                    .to_owned(),
            )
            .exec(conn)
            .await?;
        let mut history: Vec<Message> = message::Entity::find()
            .filter(message::Column::Room.eq(&room))
            .order_by_desc(message::Column::Id)
            .limit(HISTORY)
            .all(conn)
            .await?
            .into_iter()
            .map(|m| Message {
                author: m.author,
                text: m.text,
            })
            .collect();
        history.reverse();
        self.members = members_of(conn, &room).await?;
        // Joins apply before broadcasts, so the tab hears its own arrival too.
        ctx.join(room_key(&room));
        ctx.broadcast(room_key(&room), presence(&room, &self.members));
        self.history = history;
        self.room = room;
        self.name = name;
        Ok(())
    }

    /// A message (1 to 500 characters) to the tab's room.
    pub async fn say(&mut self, ctx: EventContext, text: String) -> Result<(), ferrule::Error> {
        if self.room.is_empty() {
            return Err(ferrule::Error::bad_request("Join a room first."));
        }
        let text = check("message", &text, 500, false)?;
        let conn = ctx.db()?;
        self.here(ctx.clone()).await?;
        let event = post(conn, &self.room, &self.name, &text).await?;
        ctx.broadcast(room_key(&self.room), event);
        Ok(())
    }
    // ANCHOR_END: join_say

    /// Out of the room.
    pub async fn leave(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        if self.room.is_empty() {
            return Ok(());
        }
        let conn = ctx.db()?;
        member::Entity::delete_by_id(ctx.token().to_owned())
            .exec(conn)
            .await?;
        let left = std::mem::take(&mut self.room);
        let members = members_of(conn, &left).await?;
        ctx.leave(room_key(&left));
        ctx.broadcast(room_key(&left), presence(&left, &members));
        self.members.clear();
        self.history.clear();
        Ok(())
    }

    /// The tab is still open (sent every 20 s by the page): keeps it in its room's presence.
    pub async fn here(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        if self.room.is_empty() {
            return Ok(());
        }
        member::Entity::update_many()
            .col_expr(
                member::Column::SeenMs,
                sea_orm::sea_query::Expr::value(now_ms()),
            )
            .filter(member::Column::Token.eq(ctx.token()))
            .exec(ctx.db()?)
            .await?;
        Ok(())
    }
}
