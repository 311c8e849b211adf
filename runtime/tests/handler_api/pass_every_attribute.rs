//! Every attribute together, and a state written by hand beside it.

use ferrule::background::Background;
use ferrule::protocol::{Action, StateName};
use ferrule::upload::UploadedFile;
use ferrule::{ClientCommand, EventContext, Handlers, State};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CartState {
    items: Vec<String>,
}

#[ferrule::state(name = "cart", tier = "auth_only", session_bound = false)]
impl CartState {
    /// Adds an item.
    #[login_required]
    pub async fn add_item(&mut self, _ctx: EventContext, name: String, #[serde(default)] quantity: u32) {
        for _ in 0..quantity.max(1) {
            self.items.push(name.clone());
        }
    }

    #[permission("shop.refund")]
    #[group("support")]
    pub async fn refund(&mut self, _ctx: EventContext, order: u64) -> Result<ClientCommand, ferrule::Error> {
        Ok(ClientCommand::toast(ferrule::ToastLevel::Info, format!("refunded {order}")))
    }

    #[staff_required]
    #[superuser_required]
    #[on_change("items", "carts")]
    pub async fn clear(&mut self, _ctx: EventContext) {
        self.items.clear();
    }

    #[upload(max_bytes = 1 << 20)]
    pub async fn attach(&mut self, _ctx: EventContext, files: Vec<UploadedFile>) {
        self.items.extend(files.into_iter().map(|f| f.file_name.unwrap_or_default()));
    }

    #[background]
    pub async fn import(bg: Background<Self>, rows: Vec<String>) -> Result<(), ferrule::Error> {
        bg.update(move |s| s.items.extend(rows)).await
    }

    #[action(Empty)]
    pub async fn empty_cart(&mut self, _ctx: EventContext) {
        self.items.clear();
    }
}

/// One value for every tab of the session.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct BasketState {
    items: Vec<String>,
}

#[ferrule::state(scope = "session")]
impl BasketState {
    pub async fn put(&mut self, _ctx: EventContext, item: String) {
        self.items.push(item);
    }
}

/// Written by hand: the action is inferred from the handler's payload.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct NoteState {
    text: String,
}

#[derive(Serialize, Deserialize)]
pub struct Write {
    text: String,
}

ferrule::actions!(NoteState as "notes" { write: Write });

impl NoteState {
    async fn write(&mut self, _ctx: EventContext, w: Write) {
        self.text = w.text;
    }
}

impl State for NoteState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action(Self::write).login_required();
    }
}

fn main() {
    assert_eq!(CartState::state_name(), "cart");
    assert_eq!(AddItem::event_name(), "cart.add_item");
    assert_eq!(Empty::event_name(), "cart.empty_cart");
    assert_eq!(Attach::event_name(), "cart.attach");
    assert_eq!(Write::event_name(), "notes.write");
    let _ = (AddItem { name: "tea".into(), quantity: 2 }, Refund { order: 7 }, Clear, Import { rows: vec![] });
    assert_eq!(<CartState as State>::TIER, Some(ferrule::Tier::AuthOnly));
    assert!(!<CartState as State>::SESSION_BOUND);
    assert!(!<CartState as State>::SESSION_SCOPED);
    assert!(<BasketState as State>::SESSION_SCOPED);
    let _ = Put { item: "tea".into() };
}
