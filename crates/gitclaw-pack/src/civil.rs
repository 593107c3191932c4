//! The calendar date and time of unix seconds, in UTC: what a zip's DOS times
//! and the server's RFC 3339 times are written from.

/// A moment as the proleptic Gregorian calendar writes it, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

/// The date and time of `unix_secs` (before 1970 too).
pub fn civil(unix_secs: i64) -> Civil {
    let days = unix_secs.div_euclid(86_400);
    let rem = unix_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_either_side_of_the_epoch() {
        let at = |y, mo, d, h, mi, s| Civil {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        };
        assert_eq!(civil(0), at(1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_700_000_000), at(2023, 11, 14, 22, 13, 20));
        assert_eq!(civil(-1), at(1969, 12, 31, 23, 59, 59));
        assert_eq!(civil(951_782_400), at(2000, 2, 29, 0, 0, 0));
    }
}
