//! Two handlers that would be one action.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    count: i64,
}

#[ferrule::state]
impl CounterState {
    pub async fn add(&mut self, _ctx: EventContext, amount: i64) {
        self.count += amount;
    }

    #[action(Add)]
    pub async fn plus(&mut self, _ctx: EventContext, amount: i64) {
        self.count += amount;
    }
}

fn main() {}
