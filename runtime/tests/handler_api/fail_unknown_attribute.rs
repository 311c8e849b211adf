//! A misspelt guard would guard nothing: it is refused with the right spelling.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    count: i64,
}

#[ferrule::state]
impl CounterState {
    #[login_requried]
    pub async fn reset(&mut self, _ctx: EventContext) {
        self.count = 0;
    }
}

fn main() {}
