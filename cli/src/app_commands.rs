//! The app binary's commands as `ferrule` knows them before building: the runtime's built-in
//! ones, and the app's own as its last build listed them (`<target>/ferrule/<app>-commands.json`,
//! written from the binary's `--help` after every build). `ferrule --help` shows them, and a
//! mistyped name is refused with a suggestion before a build starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// The commands every Ferrule app binary has, with the help it gives them.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "serve",
        "Serve HTTP and events on FERRULE_ADDR (default 127.0.0.1:3000)",
    ),
    (
        "routes",
        "Print the HTTP routes, reserved paths, states with their handlers, and middleware",
    ),
    (
        "migrate",
        "Create or update the database tables; `migrate status`, `migrate down [N]`, `migrate fresh --yes`",
    ),
    ("createsuperuser", "Create a superuser"),
    ("changepassword", "Set a user's password"),
    (
        "settings",
        "Print every setting with the layer it came from, secrets masked",
    ),
    (
        "jobs",
        "Durable jobs: `jobs list [--state STATE]`, `jobs retry ID…|--dead`, `jobs purge`, `jobs work`",
    ),
];

/// One command of the app binary: its name and its help line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCommand {
    /// What to type after `ferrule`.
    pub name: String,
    /// What `--help` says of it.
    pub help: String,
}

/// Where the command list of `package`'s last build is kept.
pub fn cache_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join("ferrule")
        .join(format!("{package}-commands.json"))
}

/// The subcommands a clap `--help` text lists (`help` left out); a help line clap wrapped is
/// joined again.
pub fn parse_help(text: &str) -> Vec<AppCommand> {
    let mut commands: Vec<AppCommand> = Vec::new();
    let listed = text
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "));
    for line in listed {
        let rest = &line[2..];
        if rest.starts_with(' ') {
            if let Some(last) = commands.last_mut() {
                last.help = format!("{} {}", last.help, rest.trim());
            }
            continue;
        }
        let (name, help) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        commands.push(AppCommand {
            name: name.to_owned(),
            help: help.trim().to_owned(),
        });
    }
    commands.retain(|c| c.name != "help");
    commands
}

/// Asks the freshly built `bin` for its commands and keeps them at `cache`. The binary opens
/// the app's database first; when it cannot, nothing is kept and the caller goes on.
pub fn remember(bin: &Path, app_dir: &Path, cache: &Path) -> Result<Vec<AppCommand>> {
    let out = Command::new(bin)
        .arg("--help")
        .current_dir(app_dir)
        .env("FERRULE_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run {} --help", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let commands = parse_help(&text);
    anyhow::ensure!(
        out.status.success() && !commands.is_empty(),
        "{} --help listed no commands: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let json: Vec<serde_json::Value> = commands
        .iter()
        .map(|c| serde_json::json!({ "name": c.name, "help": c.help }))
        .collect();
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(cache, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", cache.display()))?;
    Ok(commands)
}

/// [`remember`] when `bin` is newer than what `cache` holds (a build since); a failure is said
/// as a note, since the command list only helps.
pub fn refresh(bin: &Path, app_dir: &Path, cache: &Path) {
    if crate::site::newer_than(&[cache.to_path_buf()], bin) {
        return;
    }
    if let Err(e) = remember(bin, app_dir, cache) {
        eprintln!("note: `ferrule --help` cannot list the app's own commands yet: {e:#}");
    }
}

/// The commands kept at `cache` by the last build, or `None` before the first.
pub fn remembered(cache: &Path) -> Option<Vec<AppCommand>> {
    let json: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(cache).ok()?).ok()?;
    Some(
        json.iter()
            .filter_map(|c| {
                Some(AppCommand {
                    name: c["name"].as_str()?.to_owned(),
                    help: c["help"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect(),
    )
}

/// The built-in commands, for an app not built yet.
pub fn built_in() -> Vec<AppCommand> {
    BUILT_IN
        .iter()
        .map(|(name, help)| AppCommand {
            name: (*name).to_owned(),
            help: (*help).to_owned(),
        })
        .collect()
}

/// The known command `name` was probably meant to be: a close spelling of one, never `name`
/// itself.
pub fn did_you_mean<'a>(name: &str, known: &'a [AppCommand]) -> Option<&'a str> {
    known
        .iter()
        .map(|c| (strsim::jaro_winkler(name, &c.name), c.name.as_str()))
        .filter(|(score, known)| *score >= 0.85 && *known != name)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "A Ferrule app\n\nUsage: shop <COMMAND>\n\nCommands:\n  serve            Serve HTTP and events\n  migrate          Create or update the database tables; `migrate\n                   status`\n  demo-data        Load the demo catalogue\n  help             Print this message or the help of the given subcommand(s)\n\nOptions:\n  -h, --help  Print help\n";

    #[test]
    fn the_app_binarys_help_gives_its_commands() {
        let commands = parse_help(HELP);
        let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
        // A wrapped help line is not a command; `help` is clap's own.
        assert_eq!(names, ["serve", "migrate", "demo-data"]);
        assert_eq!(
            commands[1].help,
            "Create or update the database tables; `migrate status`"
        );
        assert_eq!(commands[2].help, "Load the demo catalogue");
    }

    #[test]
    fn a_typo_is_answered_with_the_command_it_resembles() {
        let known = built_in();
        assert_eq!(did_you_mean("mirgate", &known), Some("migrate"));
        assert_eq!(
            did_you_mean("createsuperuesr", &known),
            Some("createsuperuser")
        );
        assert_eq!(
            did_you_mean("routes", &known),
            None,
            "a known name is no typo"
        );
        assert_eq!(did_you_mean("deploy", &known), None, "nothing alike");
    }
}
