//! A scope the runtime does not know would silently keep the state per tab: it is refused,
//! naming the two there are.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CartState {
    items: Vec<String>,
}

#[ferrule::state(scope = "browser")]
impl CartState {
    pub async fn clear(&mut self, _ctx: EventContext) {
        self.items.clear();
    }
}

fn main() {}
