//! The library behind the `ferrule` command, shared with the repository's `cargo xtask`: the
//! generators ([`new`], [`generate`]), the build pipeline of an app's site ([`site`]) and the dev loop
//! ([`dev`]).

pub mod app_commands;
pub mod assets;
pub mod dev;
pub mod dist;
pub mod generate;
pub mod new;
pub mod site;
pub mod tools;
