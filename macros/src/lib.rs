//! `#[ferrule::state]`: a state's handlers declared once, as methods, typed on both sides.
//!
//! Use it through `ferrule`, which re-exports it; the book's "Handlers" chapter shows what it
//! writes. In short, on an `impl` block of shared code (compiled for the server and the browser):
//!
//! - every `async fn` is a handler: `&mut self`, an `EventContext`, then its payload parameters;
//! - each handler gets an action type named after it (`add_item` → `AddItem`), whose fields are
//!   the payload parameters, with `ferrule::protocol::Action` pointing at the handler;
//! - the state gets its `ferrule::protocol::StateName`, the one wire name both sides use;
//! - behind `#[cfg(feature = "ssr")]`, in the app's crate, the methods themselves and the
//!   `ferrule::State` impl registering each handler with its guards.

mod expand;
mod locales;
mod options;
mod parse;

use proc_macro::TokenStream;

/// Declares a state's handlers: see the crate documentation and the book's "Handlers" chapter.
///
/// Arguments, all optional: `name = "cart"` (the wire name; default the type name in snake
/// case), `tier = "full" | "auth_only" | "none"`, `session_bound = false`, `scope = "session"` (one
/// value for every tab of the session, rendered by the server). Handler attributes:
/// `#[login_required]`, `#[permission("app.perm")]`, `#[group("staff")]`, `#[staff_required]`,
/// `#[superuser_required]`, `#[upload]` / `#[upload(max_bytes = N)]`, `#[background]`.
#[proc_macro_attribute]
pub fn state(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let item = proc_macro2::TokenStream::from(item);
    match expand::state(args, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The calling crate's Fluent catalogues, `locales/<language>/*.ftl` (or under the directory
/// given, relative to the crate's manifest), read at compile time: `App::locales(ferrule::locales!())`.
/// A file added later is picked up at the next change of the crate's code.
#[proc_macro]
pub fn locales(input: TokenStream) -> TokenStream {
    match locales::locales(proc_macro2::TokenStream::from(input)) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
