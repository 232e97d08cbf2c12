//! `eventTime`: RFC 3339, read leniently because real clients are not strict.
//!
//! Accepted: `YYYY-MM-DD`, then `T`, `t` or a space, then `HH:MM[:SS]`, an
//! optional fraction (`.` or `,`, any number of digits; beyond nanoseconds
//! they are ignored), and an optional offset (`Z`, `±HH:MM`, `±HHMM`,
//! `±HH`). **No offset means UTC**: the python client and Marquez's fixtures
//! send local-less times such as `2021-11-03T10:53:52.427343`, and Marquez
//! reads them as UTC too. A hand-written parser rather than a date crate:
//! this is all the crate needs of calendars, and it keeps the crate free of
//! a dependency.

/// An instant, as milliseconds for the graph and as canonical text for the
/// dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Timestamp {
    /// Milliseconds since the Unix epoch (the fraction truncated).
    pub millis: i64,
    /// The same instant in UTC, `YYYY-MM-DDTHH:MM:SS[.f…]Z`, with the
    /// fraction to the precision sent (trailing zeros dropped): two events
    /// that name the same instant differently get the same text, and
    /// `.641Z` and `.641499Z` stay apart.
    pub canonical: String,
}

/// Parses `text`; the error says what is wrong.
pub(super) fn parse(text: &str) -> Result<Timestamp, &'static str> {
    let mut p = Cursor {
        b: text.trim().as_bytes(),
        i: 0,
    };
    let year = p.digits(4).ok_or("expected YYYY-MM-DD at the start")?;
    p.expect(b'-').ok_or("expected YYYY-MM-DD at the start")?;
    let month = p.digits(2).ok_or("expected YYYY-MM-DD at the start")?;
    p.expect(b'-').ok_or("expected YYYY-MM-DD at the start")?;
    let day = p.digits(2).ok_or("expected YYYY-MM-DD at the start")?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    match p.next() {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err("expected a time after the date (YYYY-MM-DDTHH:MM:SS)"),
    }
    let hour = p.digits(2).ok_or("expected HH:MM after the date")?;
    p.expect(b':').ok_or("expected HH:MM after the date")?;
    let minute = p.digits(2).ok_or("expected HH:MM after the date")?;
    let second = if p.peek() == Some(b':') {
        p.i += 1;
        p.digits(2).ok_or("expected seconds after HH:MM:")?
    } else {
        0
    };
    // 60 is a leap second; it counts as the first second of the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    let mut nanos: i64 = 0;
    let mut digits = 0;
    if matches!(p.peek(), Some(b'.' | b',')) {
        p.i += 1;
        while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
            p.i += 1;
            if digits < 9 {
                nanos = nanos * 10 + i64::from(d - b'0');
                digits += 1;
            }
        }
        if digits == 0 {
            return Err("expected digits after the decimal point");
        }
        nanos *= 10_i64.pow(9 - digits);
    }
    let offset_minutes = match p.next() {
        None | Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let h = p.digits(2).ok_or("expected an offset ±HH:MM")?;
            if p.peek() == Some(b':') {
                p.i += 1;
            }
            let m = if p.peek().is_some() {
                p.digits(2).ok_or("expected an offset ±HH:MM")?
            } else {
                0
            };
            if h > 23 || m > 59 {
                return Err("no such offset");
            }
            let total = i64::from(h * 60 + m);
            if sign == b'-' { -total } else { total }
        }
        Some(_) => return Err("unexpected text after the time"),
    };
    if p.peek().is_some() {
        return Err("unexpected text after the offset");
    }
    let local_seconds = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second);
    let seconds = local_seconds - offset_minutes * 60;
    Ok(Timestamp {
        millis: seconds * 1000 + nanos / 1_000_000,
        canonical: canonical(seconds, nanos),
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            let d = self.next().filter(u8::is_ascii_digit)?;
            v = v * 10 + u32::from(d - b'0');
        }
        Some(v)
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn canonical(seconds: i64, nanos: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).millis
    }

    #[test]
    fn reads_the_forms_clients_send() {
        let t = 1_609_185_061_641; // 2020-12-28T19:51:01.641Z
        assert_eq!(ms("2020-12-28T19:51:01.641Z"), t);
        assert_eq!(ms("2020-12-28T19:51:01.641499Z"), t);
        assert_eq!(ms("2020-12-28T19:51:01.641499"), t, "no offset is UTC");
        assert_eq!(ms("2020-12-28t19:51:01.641z"), t);
        assert_eq!(ms("2020-12-28 19:51:01.641+00:00"), t);
        assert_eq!(ms("2020-12-29T05:51:01.641+10:00"), t);
        assert_eq!(ms("2020-12-29T05:51:01.641+1000"), t);
        assert_eq!(ms("2020-12-28T18:51:01.641-01"), t);
        assert_eq!(ms("2020-12-28T19:51:01,641Z"), t);
        assert_eq!(ms("2024-08-06T13:26:54.34Z") % 1000, 340);
        assert_eq!(ms("2020-12-28T19:51Z"), t - 1641);
        assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(ms("2000-02-29T00:00:00Z"), 951_782_400_000);
        assert_eq!(ms("2016-12-31T23:59:60Z"), 1_483_228_800_000);
    }

    #[test]
    fn canonical_text_is_utc_at_the_precision_sent() {
        let c = |s: &str| parse(s).unwrap().canonical;
        assert_eq!(
            c("2020-12-29T05:52:00.001+10:00"),
            "2020-12-28T19:52:00.001Z"
        );
        assert_eq!(
            c("2020-12-28T19:51:01.641499"),
            "2020-12-28T19:51:01.641499Z"
        );
        assert_eq!(
            c("2024-11-26T13:05:23.809955+00:00"),
            "2024-11-26T13:05:23.809955Z"
        );
        assert_eq!(c("2024-08-06T13:26:54.340Z"), "2024-08-06T13:26:54.34Z");
        assert_eq!(c("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
        assert_eq!(
            c("9999-12-31T23:59:59.123456789123Z"),
            "9999-12-31T23:59:59.123456789Z"
        );
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "2020-12-28",
            "2020-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-12-28T24:00:00Z",
            "2020-12-28T19:51:01.Z",
            "2020-12-28T19:51:01+25:00",
            "2020-12-28T19:51:01Zjunk",
            "2020-12-28T19:51:01+10:00x",
            "1609185061641",
            "28/12/2020 19:51",
            "२०२०-12-28T19:51:01Z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
