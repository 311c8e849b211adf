//! The action carries its fields, so a payload parameter is owned.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct NoteState {
    text: String,
}

#[ferrule::state]
impl NoteState {
    pub async fn write(&mut self, _ctx: EventContext, text: &str) {
        self.text = text.to_owned();
    }
}

fn main() {}
