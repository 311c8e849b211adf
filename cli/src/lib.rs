//! The library behind the `ferrule` command, shared with the repository's `cargo xtask`: the
//! generator ([`new`]), the build pipeline of an app's site ([`site`]) and the dev loop
//! ([`dev`]).

pub mod dev;
pub mod new;
pub mod site;
