//! The password of the app binary's `createsuperuser` and `changepassword`: never from argv
//! (other users of the machine can read it there).
//!
//! At a terminal it is asked for twice without echo (rpassword turns the terminal's echo off);
//! otherwise it comes from `FERRULE_SUPERUSER_PASSWORD` or the first line of stdin, for scripts.

use std::io::IsTerminal;

/// How many times a terminal user may type two different passwords before the command stops.
const TRIES: usize = 3;

/// The new password, from the environment, the terminal or a piped stdin.
pub(crate) fn read_password() -> Result<String, String> {
    if let Ok(p) = std::env::var("FERRULE_SUPERUSER_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return ask_twice();
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err(
            "no password given (type it at a terminal, set FERRULE_SUPERUSER_PASSWORD or pipe it on stdin)"
                .into(),
        );
    }
    Ok(p)
}

fn ask_twice() -> Result<String, String> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| format!("cannot read the password from the terminal: {e}"))
    };
    for _ in 0..TRIES {
        let first = ask("Password: ")?;
        if first.is_empty() {
            eprintln!("error: a blank password is not allowed; try again");
            continue;
        }
        if ask("Password (again): ")? == first {
            return Ok(first);
        }
        eprintln!("error: the two passwords differ; try again");
    }
    Err(format!("no matching password in {TRIES} tries"))
}
