//! The clinic's calendar: its IANA time zone, the offset rule for times a
//! channel sends, and the one way an appointment time is written for people
//! ("Tuesday, March 16, 2027 at 2:00 PM PDT").
//!
//! The rules (DST, abbreviations, history) come from the IANA time-zone
//! database through jiff: the system copy (`/usr/share/zoneinfo`, kept current
//! by the OS) when there is one, the copy bundled into the binary otherwise.

use std::fmt;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// Offsets RFC 3339 allows in principle but no place on Earth uses.
pub const MAX_OFFSET_MIN: i32 = 18 * 60;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("unknown time zone {0:?}: give an IANA name such as America/Los_Angeles or Europe/Berlin")]
    UnknownZone(String),
    #[error("time out of range")]
    OutOfRange,
}

/// A validated IANA time zone: only `parse` (a name the database knows)
/// makes one.
#[derive(Clone)]
pub struct ClinicZone {
    name: String,
    tz: TimeZone,
}

impl fmt::Debug for ClinicZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClinicZone({})", self.name)
    }
}

impl PartialEq for ClinicZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl ClinicZone {
    /// An IANA name (`America/Los_Angeles`), looked up in the database.
    /// Fixed offsets and POSIX strings are refused: a clinic's zone has to
    /// follow its country's DST rules.
    pub fn parse(name: &str) -> Result<Self, CalendarError> {
        let name = name.trim();
        let unknown = || CalendarError::UnknownZone(name.chars().take(64).collect());
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(unknown());
        }
        let tz = jiff::tz::db().get(name).map_err(|_| unknown())?;
        // The database's own spelling (it matches names case-insensitively).
        let canonical = tz.iana_name().unwrap_or(name).to_owned();
        Ok(ClinicZone { name: canonical, tz })
    }

    pub fn utc() -> Self {
        ClinicZone { name: "UTC".into(), tz: TimeZone::UTC }
    }

    /// The machine's own zone when it has an IANA name, else UTC.
    pub fn system() -> Self {
        TimeZone::try_system()
            .ok()
            .and_then(|tz| tz.iana_name().and_then(|n| Self::parse(n).ok()))
            .unwrap_or_else(Self::utc)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's rules, for callers doing their own calendar arithmetic.
    pub fn as_tz(&self) -> TimeZone {
        self.tz.clone()
    }

    fn zoned(&self, ms: i64) -> Result<ZonedDateTime, CalendarError> {
        let ts = Timestamp::from_millisecond(ms).map_err(|_| CalendarError::OutOfRange)?;
        Ok(ts.to_zoned_datetime(self.tz.clone()))
    }

    /// The zone's offset from UTC at that instant, in minutes.
    pub fn offset_min(&self, ms: i64) -> Result<i32, CalendarError> {
        let ts = Timestamp::from_millisecond(ms).map_err(|_| CalendarError::OutOfRange)?;
        Ok(self.tz.to_offset(ts).seconds() / 60)
    }

    /// "Tuesday, March 16, 2027 at 2:00 PM PDT": how a person reads it, in
    /// emails, briefs and the console.
    pub fn render(&self, ms: i64) -> String {
        self.zoned(ms).map(|z| z.strftime("%A, %B %-d, %Y at %-I:%M %p %Z").to_string()).unwrap_or_else(|_| rfc3339(ms))
    }

    /// Local time in a strftime format (jiff's), e.g. an RFC 5322 Date.
    pub fn format(&self, ms: i64, format: &str) -> String {
        self.zoned(ms).map(|z| z.strftime(format).to_string()).unwrap_or_else(|_| rfc3339(ms))
    }

    /// RFC 3339 with the zone's offset at that instant.
    pub fn rfc3339(&self, ms: i64) -> String {
        let offset = self.offset_min(ms).unwrap_or(0);
        format_time(ms, offset)
    }

    /// The first `weekday` strictly after the local day of `after_ms`, at
    /// `hour:minute` local time (DST applied; a time in a gap moves forward).
    pub fn next_weekday_at(&self, after_ms: i64, weekday: Weekday, hour: i8, minute: i8) -> Result<i64, CalendarError> {
        let day = self.zoned(after_ms)?.date().nth_weekday(1, weekday).map_err(|_| CalendarError::OutOfRange)?;
        self.local(day, hour, minute)
    }

    /// `hour:minute` local time on the day after the local day of `after_ms`.
    pub fn next_day_at(&self, after_ms: i64, hour: i8, minute: i8) -> Result<i64, CalendarError> {
        let day = self.zoned(after_ms)?.date().tomorrow().map_err(|_| CalendarError::OutOfRange)?;
        self.local(day, hour, minute)
    }

    /// The latest `hour:minute` local time at or before `at_ms`.
    pub fn last_at(&self, at_ms: i64, hour: i8, minute: i8) -> Result<i64, CalendarError> {
        let today = self.zoned(at_ms)?.date();
        let candidate = self.local(today, hour, minute)?;
        if candidate <= at_ms {
            return Ok(candidate);
        }
        self.local(today.yesterday().map_err(|_| CalendarError::OutOfRange)?, hour, minute)
    }

    /// The first instant of a local date given as `YYYY-MM-DD` (a report's
    /// period boundaries); `None` for anything else.
    pub fn start_of_day(&self, date: &str) -> Option<i64> {
        let day: jiff::civil::Date = date.trim().parse().ok()?;
        self.local(day, 0, 0).ok()
    }

    /// The first instant of the day after a local date `YYYY-MM-DD` (an
    /// inclusive period's end); `None` for anything else.
    pub fn end_of_day(&self, date: &str) -> Option<i64> {
        let day: jiff::civil::Date = date.trim().parse().ok()?;
        self.local(day.tomorrow().ok()?, 0, 0).ok()
    }

    fn local(&self, day: jiff::civil::Date, hour: i8, minute: i8) -> Result<i64, CalendarError> {
        let dt = day.at(hour, minute, 0, 0);
        let z = dt.to_zoned_datetime(self.tz.clone()).map_err(|_| CalendarError::OutOfRange)?;
        Ok(z.timestamp().as_millisecond())
    }
}

/// How a time a channel sent relates to the clinic's zone.
#[derive(Debug, PartialEq, Eq)]
pub enum OffsetCheck {
    /// The clinic's own offset at that instant, or UTC: the instant is
    /// unambiguous and is kept, shown in the clinic's zone.
    Accepted { offset_min: i32 },
    /// Any other offset: most likely a local time written with the wrong
    /// offset (winter's -08:00 on a summer date), which would book the wrong
    /// hour. Refused, naming the offset the clinic's zone has then.
    Mismatch { clinic_offset_min: i32 },
}

/// The offset rule for `starts_at`: refuse what would silently shift the hour.
pub fn check_offset(zone: &ClinicZone, ms: i64, given_offset_min: i32) -> Result<OffsetCheck, CalendarError> {
    let clinic = zone.offset_min(ms)?;
    Ok(if given_offset_min == clinic || given_offset_min == 0 {
        OffsetCheck::Accepted { offset_min: clinic }
    } else {
        OffsetCheck::Mismatch { clinic_offset_min: clinic }
    })
}

/// "-07:00", "+05:30", "Z".
pub fn offset_text(offset_min: i32) -> String {
    if offset_min == 0 {
        return "Z".into();
    }
    let sign = if offset_min < 0 { '-' } else { '+' };
    let a = offset_min.abs();
    format!("{sign}{:02}:{:02}", a / 60, a % 60)
}

/// RFC 3339 rendering of a stored timestamp, for operators.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// UTC ms shown in the offset it was given in, as RFC 3339.
pub fn format_time(ms: i64, offset_min: i32) -> String {
    let offset = time::UtcOffset::from_whole_seconds(offset_min.saturating_mul(60)).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.to_offset(offset))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn la() -> ClinicZone {
        ClinicZone::parse("America/Los_Angeles").unwrap()
    }

    #[test]
    fn zones_are_validated_against_the_database() {
        assert_eq!(la().name(), "America/Los_Angeles");
        assert_eq!(ClinicZone::parse("europe/berlin").unwrap().name(), "Europe/Berlin");
        for bad in ["", "Mars/Olympus_Mons", "PST8PDT-nonsense", "America/Los Angeles", "../../etc/passwd", "+05:00"] {
            assert!(matches!(ClinicZone::parse(bad), Err(CalendarError::UnknownZone(_))), "{bad}");
        }
        let long = "A/".repeat(100);
        let err = ClinicZone::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn rendering_follows_dst_both_ways() {
        let z = la();
        // Spring forward: Sunday 14 March 2027, 2 AM PST becomes 3 AM PDT.
        assert_eq!(z.render(ms("2027-03-14T09:59:00Z")), "Sunday, March 14, 2027 at 1:59 AM PST");
        assert_eq!(z.render(ms("2027-03-14T10:00:00Z")), "Sunday, March 14, 2027 at 3:00 AM PDT");
        assert_eq!(z.render(ms("2027-03-16T21:00:00Z")), "Tuesday, March 16, 2027 at 2:00 PM PDT");
        // Fall back: Sunday 7 November 2027, 1:30 AM happens twice.
        assert_eq!(z.render(ms("2027-11-07T08:30:00Z")), "Sunday, November 7, 2027 at 1:30 AM PDT");
        assert_eq!(z.render(ms("2027-11-07T09:30:00Z")), "Sunday, November 7, 2027 at 1:30 AM PST");
        assert_eq!(z.rfc3339(ms("2027-11-07T09:30:00Z")), "2027-11-07T01:30:00-08:00");
        assert_eq!(z.rfc3339(ms("2027-07-06T21:00:00Z")), "2027-07-06T14:00:00-07:00");
        let berlin = ClinicZone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.render(ms("2027-07-06T12:00:00Z")), "Tuesday, July 6, 2027 at 2:00 PM CEST");
        assert_eq!(ClinicZone::utc().render(ms("2027-07-06T12:00:00Z")), "Tuesday, July 6, 2027 at 12:00 PM UTC");
    }

    #[test]
    fn the_offset_rule_keeps_the_clinics_or_utc_and_refuses_the_rest() {
        let z = la();
        let summer = ms("2027-07-06T21:00:00Z");
        assert_eq!(check_offset(&z, summer, -420), Ok(OffsetCheck::Accepted { offset_min: -420 }));
        assert_eq!(check_offset(&z, summer, 0), Ok(OffsetCheck::Accepted { offset_min: -420 }));
        // Winter's offset on a summer date: 2 PM "-08:00" would be 3 PM PDT.
        assert_eq!(check_offset(&z, summer, -480), Ok(OffsetCheck::Mismatch { clinic_offset_min: -420 }));
        // A local time inside the spring gap (2:30 AM) written with -08:00 is
        // 3:30 AM PDT at the clinic: refused, not guessed.
        assert_eq!(
            check_offset(&z, ms("2027-03-14T10:30:00Z"), -480),
            Ok(OffsetCheck::Mismatch { clinic_offset_min: -420 })
        );
        // Both 1:30 AMs of the fall-back night are real.
        assert!(matches!(check_offset(&z, ms("2027-11-07T08:30:00Z"), -420), Ok(OffsetCheck::Accepted { .. })));
        assert!(matches!(check_offset(&z, ms("2027-11-07T09:30:00Z"), -480), Ok(OffsetCheck::Accepted { .. })));
        assert_eq!(offset_text(-420), "-07:00");
        assert_eq!(offset_text(330), "+05:30");
        assert_eq!(offset_text(0), "Z");
    }

    #[test]
    fn relative_dates_are_local_and_dst_aware() {
        let z = la();
        // Saturday 13 March 2027, 9 PM PST: next Tuesday 2 PM is after the change.
        let sat_9pm = ms("2027-03-14T05:00:00Z");
        assert_eq!(
            z.rfc3339(z.next_weekday_at(sat_9pm, Weekday::Tuesday, 14, 0).unwrap()),
            "2027-03-16T14:00:00-07:00"
        );
        // 8 AM the next day is ten hours later that night, not eleven.
        let eight = z.next_day_at(sat_9pm, 8, 0).unwrap();
        assert_eq!(z.rfc3339(eight), "2027-03-14T08:00:00-07:00");
        assert_eq!(eight - sat_9pm, 10 * 3_600_000);
        // On a Tuesday, "next Tuesday" is a week ahead.
        let tue = ms("2027-03-16T18:00:00Z");
        assert_eq!(z.rfc3339(z.next_weekday_at(tue, Weekday::Tuesday, 14, 0).unwrap()), "2027-03-23T14:00:00-07:00");
        // The latest 4 PM: yesterday's before 4 PM local, today's after.
        assert_eq!(z.rfc3339(z.last_at(ms("2027-03-14T09:30:00Z"), 16, 0).unwrap()), "2027-03-13T16:00:00-08:00");
        assert_eq!(z.rfc3339(z.last_at(ms("2027-03-15T01:00:00Z"), 16, 0).unwrap()), "2027-03-14T16:00:00-07:00");
        // Leap day.
        let leap = ms("2028-02-29T15:00:00Z");
        assert_eq!(z.rfc3339(z.next_day_at(leap, 8, 0).unwrap()), "2028-03-01T08:00:00-08:00");
    }
}
