//! Small helpers the `ferrule` command and the repository's `cargo xtask` share: which cargo to
//! run, and whether a local server answers.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// The cargo that runs us (`CARGO`), else the one on `PATH`.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// Whether something accepts TCP connections at `addr` within a second and a half.
pub fn reachable(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(1500)).is_ok())
}
