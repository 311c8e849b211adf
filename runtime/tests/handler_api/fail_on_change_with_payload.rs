//! A live handler runs when a table changes, with nothing to give it: it takes no payload.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct NotesState {
    notes: Vec<String>,
}

#[ferrule::state]
impl NotesState {
    #[on_change("notes")]
    pub async fn load(&mut self, _ctx: EventContext, page: u32) {
        self.notes.truncate(page as usize);
    }
}

fn main() {}
