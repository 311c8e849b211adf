//! The rules every new password meets, wherever it is set: registration, `createsuperuser`,
//! `changepassword`, and [`Auth`](super::Auth) itself. In the spirit of Django's validators:
//! long enough, not mostly the username or e-mail, not a well-known password, not only digits
//! or blanks.

/// Passwords shorter than this are refused.
pub const MIN_LENGTH: usize = 8;

/// How alike (0 to 1, normalised Levenshtein) a password may be to the username or e-mail
/// before it is refused.
const MAX_SIMILARITY: f64 = 0.7;

/// Passwords every attacker tries first, one per line, lower case.
const COMMON: &str = include_str!("common_passwords.txt");

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
    if COMMON.lines().any(|common| common == lower.trim()) {
        return Err("password is too common: choose one that is harder to guess".to_owned());
    }
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
            ("password", "too common"),
            ("Password", "too common"),
            ("qwerty123", "too common"),
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
            "1234567a",
        ] {
            assert_eq!(
                check(password, "alice", Some("alice@example.com")),
                Ok(()),
                "{password}"
            );
        }
        assert_eq!(check("carol-pass-1", "carol", None), Ok(()));
    }

    #[test]
    fn the_common_list_is_lower_case_and_long_enough_to_matter() {
        let entries: Vec<&str> = COMMON.lines().collect();
        assert!(entries.len() >= 100);
        assert!(
            entries
                .iter()
                .all(|e| *e == e.to_lowercase() && !e.is_empty())
        );
    }
}
