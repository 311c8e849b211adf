//! The library behind the `ferrule` command, shared with the repository's `cargo xtask`: the
//! generator ([`new`]) and the build pipeline of an app's site ([`site`]).

pub mod new;
pub mod site;
