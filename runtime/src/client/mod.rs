//! The client side of the wire protocol.
//!
//! [`connection`] is the connection as a state machine and [`store`] the client's copy of its
//! states; neither does I/O, so both run (and are tested) natively. In the browser, the `hydrate`
//! feature drives them from a `web_sys::WebSocket` (module `browser`), and [`crate::ui`] turns
//! them into Leptos signals and components.

pub mod connection;
pub mod store;

#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
pub(crate) mod browser;

pub use connection::{Connection, Output, Status};
pub use store::StateStore;
