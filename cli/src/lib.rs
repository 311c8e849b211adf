//! The library behind the `ferrule` command, shared with the repository's `cargo xtask`: the
//! build pipeline of an app's site ([`site`]).

pub mod site;
