//! Dates and times as HTML inputs send them (`2026-12-07`, `2026-12-07T09:30`), read without a
//! date crate so the rules compile into the browser as they are; the server turns them into
//! `time` values for its columns.

/// `(year, month, day)`.
type Ymd = (i32, u8, u8);
/// `(hour, minute, second)`.
type Hms = (u8, u8, u8);

/// `(year, month, day)` of `YYYY-MM-DD`, a day that exists.
pub(crate) fn split_date(s: &str) -> Option<Ymd> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = digits(&s[0..4])?;
    let month: u8 = digits(&s[5..7])?;
    let day: u8 = digits(&s[8..10])?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days).contains(&day).then_some((year, month, day))
}

/// The date and `(hour, minute, second)` of `YYYY-MM-DDTHH:MM[:SS]` (a space for the `T` too).
pub(crate) fn split_datetime(s: &str) -> Option<(Ymd, Hms)> {
    let (date, time) = s.split_once(['T', ' '])?;
    let date = split_date(date)?;
    let mut parts = time.split(':');
    let hour: u8 = digits(parts.next()?)?;
    let minute: u8 = digits(parts.next()?)?;
    let second: u8 = match parts.next() {
        Some(s) => digits(s)?,
        None => 0,
    };
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((date, (hour, minute, second)))
}

/// A fixed-width run of ASCII digits.
fn digits<N: std::str::FromStr>(s: &str) -> Option<N> {
    if s.len() < 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The date of a form's `YYYY-MM-DD` field, for a `date` column; `None` when it is not one
/// (which `rules::date` refuses first).
#[cfg(feature = "server")]
pub fn parse_date(s: &str) -> Option<time::Date> {
    let (year, month, day) = split_date(s.trim())?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// The date and time of a form's `YYYY-MM-DDTHH:MM` field, for a `datetime` column (no time
/// zone: what the user typed).
#[cfg(feature = "server")]
pub fn parse_datetime(s: &str) -> Option<time::PrimitiveDateTime> {
    let ((year, month, day), (hour, minute, second)) = split_datetime(s.trim())?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(time::PrimitiveDateTime::new(
        date,
        time::Time::from_hms(hour, minute, second).ok()?,
    ))
}

/// A `datetime` column's value as `<input type="datetime-local">` shows it: `2026-12-07T09:30`.
#[cfg(feature = "server")]
pub fn format_datetime(value: time::PrimitiveDateTime) -> String {
    format!("{}T{:02}:{:02}", value.date(), value.hour(), value.minute())
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    #[test]
    fn what_an_input_sends_comes_back_as_it_showed_it() {
        let at = parse_datetime("2026-12-07T09:30").unwrap();
        assert_eq!(format_datetime(at), "2026-12-07T09:30");
        assert_eq!(parse_date("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(parse_date("2023-02-29").is_none());
    }
}
