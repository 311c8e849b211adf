//! The rules every new password meets, wherever it is set: registration, `createsuperuser`,
//! `changepassword`, and [`Auth`](super::Auth) itself. In the spirit of Django's validators:
//! long enough, not mostly the username or e-mail, not easy to guess, not only digits or
//! blanks.
//!
//! "Easy to guess" is the `zxcvbn` estimator's (kept by its authors, with its own lists of
//! breached passwords, names, words and keyboard walks, and the patterns people build from
//! them: `football1`, `princess1`, `1q2w3e4r5t6y`): a password it expects an attacker to find
//! in fewer than [`MIN_GUESSES`] guesses is refused. That floor is set for online guessing,
//! which the login throttle limits to a few tries per address and username every few minutes;
//! the password hashes make offline guessing slow as well.

/// Passwords shorter than this are refused.
pub const MIN_LENGTH: usize = 8;

/// How alike (0 to 1, normalised Levenshtein) a password may be to the username or e-mail
/// before it is refused.
const MAX_SIMILARITY: f64 = 0.7;

/// Fewest guesses (as `zxcvbn` estimates them) a password must take.
pub const MIN_GUESSES: f64 = 1e5;

/// Checks `password` for the account `username` (with `email`); the error says what to change.
pub(crate) fn check(password: &str, username: &str, email: Option<&str>) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!("password must be at least {MIN_LENGTH} characters"));
    }
    if password.trim().is_empty() {
        return Err("password must not be only spaces".to_owned());
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Err("password must not be only digits".to_owned());
    }
    let lower = password.to_lowercase();
    let mut attributes = vec![("username", username.to_lowercase())];
    if let Some(email) = email.filter(|e| !e.is_empty()) {
        let email = email.to_lowercase();
        if let Some((local, _)) = email.split_once('@') {
            attributes.push(("e-mail", local.to_owned()));
        }
        attributes.push(("e-mail", email));
    }
    for (what, value) in attributes {
        if value.chars().count() >= 3 && similar(&lower, &value) {
            return Err(format!("password is too similar to the {what}"));
        }
    }
    let mut known = vec![username];
    known.extend(email);
    if zxcvbn::zxcvbn(password, &known).guesses_log10() < MIN_GUESSES.log10() {
        return Err(
            "password is too easy to guess (a common password, word or pattern): add more \
             words or characters"
                .to_owned(),
        );
    }
    Ok(())
}

/// Alike as a whole (`alicia` for `alice`), or mostly the value with a little added
/// (`alice123`).
fn similar(password: &str, value: &str) -> bool {
    strsim::normalized_levenshtein(password, value) >= MAX_SIMILARITY
        || (password.contains(value) && 2 * value.chars().count() >= password.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        for (password, why) in [
            ("short", "at least 8"),
            ("        ", "only spaces"),
            ("          \t", "only spaces"),
            ("12345670", "only digits"),
            ("password", "too easy to guess"),
            ("Password", "too easy to guess"),
            ("qwerty123", "too easy to guess"),
            ("football1", "too easy to guess"),
            ("princess1", "too easy to guess"),
            ("1q2w3e4r5t6y", "too easy to guess"),
            ("Password123", "too easy to guess"),
            ("alice123", "username"),
            ("Alice1234", "username"),
            ("alice.liddell", "e-mail"),
        ] {
            let err =
                check(password, "alice", Some("alice.liddell@example.com")).expect_err(password);
            assert!(err.contains(why), "{password}: {err}");
        }
    }

    #[test]
    fn reasonable_passwords_pass_at_the_limits() {
        for password in [
            "wonderland1",
            "correct horse battery",
            "carol-pass-1",
            "8chars!x",
            "analytical engine",
        ] {
            assert_eq!(
                check(password, "alice", Some("alice@example.com")),
                Ok(()),
                "{password}"
            );
        }
        assert_eq!(check("carol-pass-1", "carol", None), Ok(()));
    }
}
