//! The log line format when stderr is not a terminal: the same text as
//! `tracing-subscriber`'s default (`2026-11-25T02:24:00.123456Z  INFO
//! target: message key=value …`), written with less work.
//!
//! Why: the access log writes one line per proxied request, and the
//! default formatter spent about 12,000 instructions on it (callgrind),
//! mostly in `fmt` machinery for colours that are off anyway. This one
//! writes fields straight into the line and formats the date once a
//! second per thread. On a terminal the default formatter, with colours,
//! is used instead.
//!
//! What it keeps from the default: string values are quoted and escaped
//! (`path="/a b"`), so a request can never start a fake log line; control
//! characters in messages are escaped too; `log` records (Pingora logs
//! through the `log` crate) show their own target and hide their `log.*`
//! fields.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct PlainLines;

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_label(meta.level()))?;
        writer.write_str(meta.target())?;
        writer.write_char(':')?;
        let mut fields = FieldWriter {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The level padded as the default formatter pads it, with the spaces
/// around it.
fn level_label(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

struct FieldWriter<'w, 'a> {
    writer: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl FieldWriter<'_, '_> {
    /// `false` for the `log.*` fields of bridged `log` records (already
    /// shown as the target) and after a write error.
    fn start(&mut self, field: &Field) -> bool {
        if self.result.is_err() || field.name().starts_with("log.") {
            return false;
        }
        self.result = self.writer.write_char(' ');
        if field.name() != "message" && self.result.is_ok() {
            self.result = self
                .writer
                .write_str(field.name())
                .and_then(|_| self.writer.write_char('='));
        }
        self.result.is_ok()
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            write_escaped(self.writer, value)
        } else {
            write_quoted(self.writer, value)
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.start(field) {
            return;
        }
        // `%value` fields and messages arrive here as Debug wrappers of
        // Display; either may carry request data, so control characters
        // are escaped.
        let mut escaping = Escaping(self.writer);
        self.result = write!(escaping, "{value:?}");
    }
}

/// A string value as the default formatter writes it (`{:?}`), with a fast
/// path for the usual plain text.
fn write_quoted(writer: &mut impl Write, value: &str) -> fmt::Result {
    if value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        writer.write_char('"')?;
        writer.write_str(value)?;
        writer.write_char('"')
    } else {
        write!(writer, "{value:?}")
    }
}

fn write_escaped(writer: &mut impl Write, value: &str) -> fmt::Result {
    Escaping(writer).write_str(value)
}

/// Passes text through with control characters written as escapes.
struct Escaping<'w, W: Write + ?Sized>(&'w mut W);

impl<W: Write + ?Sized> Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(char::is_control) {
            self.0.write_str(&rest[..at])?;
            let control = rest[at..].chars().next().expect("found at this index");
            write!(self.0, "{}", control.escape_default())?;
            rest = &rest[at + control.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

thread_local! {
    /// The last second formatted on this thread: (Unix second, text).
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC, as the default formatter writes it.
pub(crate) fn write_timestamp(writer: &mut impl Write, now: SystemTime) -> fmt::Result {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            cached.1.clear();
            format_second(&mut cached.1, second)?;
            cached.0 = second;
        }
        writer.write_str(&cached.1)
    })?;
    write!(writer, ".{:06}Z", since_epoch.subsec_micros())
}

fn format_second(out: &mut String, unix_second: u64) -> fmt::Result {
    let days = (unix_second / 86_400) as i64;
    let in_day = unix_second % 86_400;
    let (year, month, day) = civil_from_days(days);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 to the proleptic Gregorian (year, month, day),
/// by counting 400-year eras of 146,097 days from 0000-03-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        for (days, expected) in [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (59, (1970, 3, 1)),
            (10_957, (2000, 1, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (20_782, (2026, 11, 25)),
            (47_541, (2100, 3, 1)),
        ] {
            assert_eq!(civil_from_days(days), expected, "day {days}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut out = String::new();
        let at = UNIX_EPOCH + Duration::from_micros(1_795_574_040_012_345);
        write_timestamp(&mut out, at).unwrap();
        assert_eq!(out, "2026-11-25T02:34:00.012345Z");
        // The cached second is reused, the fraction is not.
        out.clear();
        write_timestamp(&mut out, at + Duration::from_micros(7)).unwrap();
        assert_eq!(out, "2026-11-25T02:34:00.012352Z");
    }

    #[test]
    fn values_are_quoted_and_control_characters_escaped() {
        for (value, expected) in [
            ("/api/items", "\"/api/items\""),
            ("/a b", "\"/a b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("line\nfake INFO", "\"line\\nfake INFO\""),
            ("\u{1b}[31m", "\"\\u{1b}[31m\""),
            ("ünïcode", "\"ünïcode\""),
        ] {
            let mut out = String::new();
            write_quoted(&mut out, value).unwrap();
            assert_eq!(out, expected, "{value:?}");
        }
        let mut out = String::new();
        write_escaped(&mut out, "a\nb\u{1b}c\u{7f}").unwrap();
        assert_eq!(out, "a\\nb\\u{1b}c\\u{7f}");
    }

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(emit: impl FnOnce()) -> String {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(PlainLines)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn an_access_line_reads_as_the_default_format_does() {
        let line = capture(|| {
            tracing::info!(
                target: "portcullis::access",
                method = %"GET",
                path = "/api/x",
                status = 200u16,
                ok = true,
                delta = -3i64,
                user_id = "-",
            );
        });
        let (timestamp, rest) = line.split_at(27);
        assert!(timestamp.ends_with('Z'), "{line}");
        assert_eq!(
            rest,
            "  INFO portcullis::access: method=GET path=\"/api/x\" status=200 ok=true delta=-3 user_id=\"-\"\n"
        );
    }

    #[test]
    fn messages_come_unquoted_with_their_fields() {
        let line = capture(|| tracing::warn!(target: "t", attempt = 2, "retrying in {}s", 5));
        assert!(
            line.ends_with("  WARN t: retrying in 5s attempt=2\n"),
            "{line}"
        );
        let line = capture(|| tracing::error!(target: "t", "bad\ninput"));
        assert!(line.ends_with(" ERROR t: bad\\ninput\n"), "{line}");
    }
}
