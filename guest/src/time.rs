//! Event time to the archive key's `YYYYMMDD_HHMMSS`, in UTC, without a clock.

#[allow(unused_imports)]
use crate::prelude::*;

/// Reads an RFC 3339 timestamp (`2026-03-02T14:05:09Z`, with optional fraction and a `Z` or
/// `±HH:MM` offset) and formats it in UTC as `YYYYMMDD_HHMMSS`. `None` when it is not one.
pub fn archive_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let raw_second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || raw_second > 60 {
        return None;
    }
    // A leap second (60) is stored as the last second of its minute.
    let second = raw_second.min(59);
    let mut rest = &b[19..];
    if let Some((b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset_minutes: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let total = i64::from(h * 60 + m);
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let local = days_from_civil(i64::from(year), month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_minutes * 60;
    let (y, mo, d) = civil_from_days(utc.div_euclid(86_400));
    let secs = utc.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!("{y:04}{mo:02}{d:02}_{:02}{:02}{:02}", secs / 3600, secs % 3600 / 60, secs % 60))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_format_directly() {
        assert_eq!(archive_timestamp("2026-03-02T14:05:09Z").as_deref(), Some("20260302_140509"));
        assert_eq!(archive_timestamp("2026-03-02T14:05:09.123456Z").as_deref(), Some("20260302_140509"));
    }

    #[test]
    fn offsets_are_converted_to_utc_across_days_and_years() {
        assert_eq!(archive_timestamp("2026-03-02T01:00:00+02:00").as_deref(), Some("20260301_230000"));
        assert_eq!(archive_timestamp("2025-12-31T23:30:00-01:00").as_deref(), Some("20260101_003000"));
        assert_eq!(archive_timestamp("2024-03-01T00:10:00+00:30").as_deref(), Some("20240229_234000"));
    }

    #[test]
    fn leap_second_is_kept_in_its_minute() {
        assert_eq!(archive_timestamp("2016-12-31T23:59:60Z").as_deref(), Some("20161231_235959"));
    }

    #[test]
    fn not_a_timestamp_is_none() {
        for s in [
            "",
            "yesterday",
            "2026-03-02",
            "2026-03-02T14:05:09",
            "2026-13-02T14:05:09Z",
            "2026-02-30T14:05:09Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T14:05:09.Z",
            "2026-03-02T14:05:09+2:00",
            "2026-03-02T14:05:61Z",
            "２026-03-02T14:05:09Z",
        ] {
            assert_eq!(archive_timestamp(s), None, "{s:?}");
        }
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-146_097 * 2..146_097 * 2).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
