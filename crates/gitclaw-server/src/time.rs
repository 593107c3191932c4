//! Times as the server writes them.

/// Unix seconds as RFC 3339 UTC (`2026-12-02T10:35:00Z`), as LFS answers
/// and the command line write times.
pub fn rfc3339(unix_secs: i64) -> String {
    format!("{}Z", civil(unix_secs))
}

/// Unix seconds as RFC 3339 in the time zone `offset_secs` east of UTC
/// (`2026-12-02T11:35:00+01:00`, `Z` for UTC), as a commit's author wrote
/// it: what `git log --format=%aI` prints.
pub fn rfc3339_at_offset(unix_secs: i64, offset_secs: i32) -> String {
    if offset_secs == 0 {
        return rfc3339(unix_secs);
    }
    let offset = i64::from(offset_secs);
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.abs() / 60;
    format!(
        "{}{sign}{:02}:{:02}",
        civil(unix_secs.saturating_add(offset)),
        minutes / 60,
        minutes % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS` of unix seconds.
fn civil(unix_secs: i64) -> String {
    let t = gitclaw_pack::civil::civil(unix_secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_their_own_zone() {
        assert_eq!(rfc3339_at_offset(0, 3600), "1970-01-01T01:00:00+01:00");
        assert_eq!(
            rfc3339_at_offset(0, -(5 * 3600 + 30 * 60)),
            "1969-12-31T18:30:00-05:30"
        );
        assert_eq!(rfc3339_at_offset(1_700_000_000, 0), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn times_are_written_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_207_700), "2026-12-02T10:35:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
