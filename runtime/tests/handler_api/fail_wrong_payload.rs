//! By hand, `h.action` takes the action from the handler's payload: a handler whose payload
//! is another state's action does not compile.

use ferrule::{EventContext, Handlers, State};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CounterState {
    count: i64,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct OtherState {}

#[derive(Serialize, Deserialize)]
pub struct Add {
    amount: i64,
}

ferrule::actions!(CounterState {});
ferrule::actions!(OtherState { add: Add });

impl CounterState {
    async fn add(&mut self, _ctx: EventContext, p: Add) {
        self.count += p.amount;
    }
}

impl State for CounterState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action(Self::add);
    }
}

fn main() {}
