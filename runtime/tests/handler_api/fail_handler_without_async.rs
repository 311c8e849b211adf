//! A handler that lost its `async` is not silently taken for a helper.

use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    count: i64,
}

#[ferrule::state]
impl CounterState {
    pub fn increment(&mut self, _ctx: EventContext) {
        self.count += 1;
    }
}

fn main() {}
