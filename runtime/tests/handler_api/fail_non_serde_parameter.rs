//! A payload parameter travels from the browser: its type must be serde.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    count: i64,
}

pub struct Amount(i64);

#[ferrule::state]
impl CounterState {
    pub async fn add(&mut self, _ctx: EventContext, amount: Amount) {
        self.count += amount.0;
    }
}

fn main() {}
