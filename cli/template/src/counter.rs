//! The counter: a state each tab has, and its one handler. In a module of its own, so that an
//! edit here leaves the pages in `lib.rs` as they were for the compiler's incremental cache (a
//! rebuild under `ferrule dev` then takes seconds less).

#[cfg(feature = "ssr")]
use ferrule::EventContext;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::Tenant;

/// The count this tab sees and changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterState {
    /// The current count.
    pub count: i64,
    /// The tenant the last click came from (put in the request by the `tenant` middleware).
    pub tenant: String,
}

// One method per handler: `#[ferrule::state]` writes the action (`Increment`) that the page
// sends, and keeps the bodies to the server build.
#[ferrule::state]
impl CounterState {
    /// Adds one, and notes the tenant the click came from.
    pub async fn increment(&mut self, ctx: EventContext) {
        self.count += 1;
        if let Some(Tenant(name)) = ctx.extension::<Tenant>() {
            self.tenant = name.clone();
        }
    }
}
