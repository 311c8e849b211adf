//! A handler changes its state, so it takes `&mut self`.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    count: i64,
}

#[ferrule::state]
impl CounterState {
    pub async fn add(&self, _ctx: EventContext, amount: i64) {
        let _ = amount;
    }
}

fn main() {}
