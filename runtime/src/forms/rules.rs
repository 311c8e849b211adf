//! `garde` custom rules with messages meant for the person filling the form in, for
//! `#[garde(custom(...))]`. Text fields stay text until checked, so a typo in a number is a
//! message under its field rather than a refused event.

use garde::Error;

/// Not empty once trimmed: "Required."
pub fn required<T: AsRef<str> + ?Sized, C>(value: &T, _: &C) -> garde::Result {
    if value.as_ref().trim().is_empty() {
        return Err(Error::new("Required."));
    }
    Ok(())
}

/// At most `max` characters once trimmed: "At most {max} characters."
pub fn max_chars<T: AsRef<str> + ?Sized, C>(max: usize) -> impl FnOnce(&T, &C) -> garde::Result {
    move |value, _| {
        if value.as_ref().trim().chars().count() > max {
            return Err(Error::new(format!("At most {max} characters.")));
        }
        Ok(())
    }
}

/// A whole number (`-12`), spaces around it allowed: "Enter a whole number."
pub fn whole_number<T: AsRef<str> + ?Sized, C>(value: &T, _: &C) -> garde::Result {
    match value.as_ref().trim().parse::<i64>() {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::new("Enter a whole number.")),
    }
}

/// Text that parses as `N` (an `i32`, a date…), or `message`: for a number whose range is
/// narrower than [`whole_number`]'s, `custom(rules::parses::<i32>("Enter a whole number."))`.
pub fn parses<N: std::str::FromStr>(
    message: &'static str,
) -> impl FnOnce(&String, &()) -> garde::Result {
    move |value, _| match value.trim().parse::<N>() {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::new(message)),
    }
}

/// A finite number (`3.5`): "Enter a number."
pub fn number<T: AsRef<str> + ?Sized, C>(value: &T, _: &C) -> garde::Result {
    match value.as_ref().trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(()),
        _ => Err(Error::new("Enter a number.")),
    }
}

/// A calendar date as `<input type="date">` sends it (`2026-12-07`): "Enter a date as YYYY-MM-DD."
pub fn date<T: AsRef<str> + ?Sized, C>(value: &T, _: &C) -> garde::Result {
    match super::dates::split_date(value.as_ref().trim()) {
        Some(_) => Ok(()),
        None => Err(Error::new("Enter a date as YYYY-MM-DD.")),
    }
}

/// A date and time as `<input type="datetime-local">` sends it (`2026-12-07T09:30`, seconds
/// optional): "Enter a date and time as YYYY-MM-DD HH:MM."
pub fn datetime<T: AsRef<str> + ?Sized, C>(value: &T, _: &C) -> garde::Result {
    match super::dates::split_datetime(value.as_ref().trim()) {
        Some(_) => Ok(()),
        None => Err(Error::new("Enter a date and time as YYYY-MM-DD HH:MM.")),
    }
}

/// Empty, or what `inner` accepts: for optional fields (`custom(optional(whole_number))`).
pub fn optional<T: AsRef<str> + ?Sized, C>(
    inner: impl FnOnce(&T, &C) -> garde::Result,
) -> impl FnOnce(&T, &C) -> garde::Result {
    move |value, ctx| {
        if value.as_ref().trim().is_empty() {
            return Ok(());
        }
        inner(value, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_speak_to_the_person_filling_the_form_in() {
        assert_eq!(required("  ", &()).unwrap_err().message(), "Required.");
        assert!(required("x", &()).is_ok());
        let long = max_chars::<str, ()>(3)("abcd", &());
        assert_eq!(long.unwrap_err().message(), "At most 3 characters.");
        assert!(whole_number(" 12 ", &()).is_ok());
        assert!(whole_number("1.5", &()).is_err());
        assert!(number("inf", &()).is_err());
        assert!(optional::<str, ()>(whole_number)("", &()).is_ok());
        assert!(optional::<str, ()>(whole_number)("x", &()).is_err());
        assert!(date("2024-02-29", &()).is_ok(), "a leap day");
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-1",
            "07/12/2026",
            "2026-12-07T10:00",
        ] {
            assert!(date(bad, &()).is_err(), "{bad}");
        }
        assert!(datetime("2026-12-07T09:30", &()).is_ok());
        assert!(datetime("2026-12-07 09:30:15", &()).is_ok());
        for bad in ["2026-12-07", "2026-12-07T24:00", "2026-12-07T09:60"] {
            assert!(datetime(bad, &()).is_err(), "{bad}");
        }
        let small = parses::<i32>("Enter a whole number.");
        assert!(small(&"3000000000".to_owned(), &()).is_err());
    }
}
