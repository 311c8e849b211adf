//! The `ferrule` command. For now: `ferrule doctor`, which checks the machine for what building
//! and testing a Ferrule app needs and says how to fix each problem. `ferrule new`, `dev`,
//! `build` and `generate` come with the generator.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrule", version, about = "Ferrule: full-stack Rust apps")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check the toolchain and services and say how to fix what is missing.
    Doctor,
}

/// One line of the doctor's report.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
    required: bool,
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `rustc 1.95.0 (...)` → (1, 95).
fn rustc_minor(version: &str) -> Option<(u32, u32)> {
    let v = version.split_whitespace().nth(1)?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn reachable(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

fn doctor() -> Vec<Check> {
    let mut checks = Vec::new();
    let rustc = output("rustc", &["--version"]);
    checks.push(Check {
        name: "rustc >= 1.94",
        ok: rustc
            .as_deref()
            .and_then(rustc_minor)
            .is_some_and(|v| v >= (1, 94)),
        detail: rustc.unwrap_or_else(|| "not found".into()),
        fix: "install Rust with rustup, then `rustup update stable`",
        required: true,
    });
    let sysroot = output("rustc", &["--print", "sysroot"]).unwrap_or_default();
    let wasm_std = std::fs::read_dir(format!("{sysroot}/lib/rustlib/wasm32-unknown-unknown/lib"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false);
    checks.push(Check {
        name: "wasm32 target",
        ok: wasm_std,
        detail: if wasm_std {
            "installed".into()
        } else {
            "missing".into()
        },
        fix: "`rustup target add wasm32-unknown-unknown` (needed for the browser client)",
        required: false,
    });
    let db = std::env::var("DATABASE_URL").unwrap_or_default();
    let db_ok = db.is_empty() || db.starts_with("sqlite:") || db.starts_with("postgres");
    checks.push(Check {
        name: "DATABASE_URL",
        ok: db_ok,
        detail: if db.is_empty() {
            "unset: apps use a SQLite file beside them".into()
        } else {
            db.split('@').next_back().unwrap_or("").to_owned()
        },
        fix: "use sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB",
        required: true,
    });
    for (name, addr, fix) in [
        (
            "PostgreSQL",
            "127.0.0.1:5432",
            "start PostgreSQL to run the PostgreSQL tests",
        ),
        (
            "Redis",
            "127.0.0.1:6379",
            "start Redis to run the Redis tests",
        ),
    ] {
        let ok = reachable(addr);
        checks.push(Check {
            name,
            ok,
            detail: format!("{addr}: {}", if ok { "reachable" } else { "not reachable" }),
            fix,
            required: false,
        });
    }
    checks
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Doctor => {
            let checks = doctor();
            let mut failed = false;
            for c in &checks {
                let mark = if c.ok {
                    "ok  "
                } else if c.required {
                    "FAIL"
                } else {
                    "warn"
                };
                println!("[{mark}] {:<16} {}", c.name, c.detail);
                if !c.ok {
                    println!("       fix: {}", c.fix);
                    failed |= c.required;
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_versions() {
        assert_eq!(
            rustc_minor("rustc 1.95.0 (59807616e 2026-04-14)"),
            Some((1, 95))
        );
        assert_eq!(rustc_minor("rustc 1.94.1"), Some((1, 94)));
        assert_eq!(rustc_minor("garbage"), None);
    }

    #[test]
    fn doctor_finds_this_machines_rustc() {
        let checks = doctor();
        let rustc = checks.iter().find(|c| c.name.starts_with("rustc")).unwrap();
        assert!(rustc.ok, "{}", rustc.detail);
    }
}
