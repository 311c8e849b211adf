//! The page and the tests send typed actions: a value of the wrong type does not compile.

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
}

fn main() {
    let _ = Add { amount: "ten" };
}
