//! The text log format: tracing-subscriber's default, except for the line
//! written on every request. That line is formatted by the request log in one
//! pass (`http::log`) and arrives as a bare message; written through the
//! default formatter, its characters went one by one through the writer that
//! guards against escape sequences, which cost more than the rest of a cache
//! hit's logging. It cannot hold any (a request path has no control
//! characters, nor has a method, an address or a number), so it is written
//! as it is, after the same timestamp, level and target.

use std::fmt;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Where the request line comes from.
const REQUEST_TARGET: &str = "goproxy::http::log";

pub(crate) struct TextFormat {
    default: Format,
}

impl TextFormat {
    pub(crate) fn new() -> TextFormat {
        TextFormat {
            default: Format::default(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let bare_request_line = meta.target() == REQUEST_TARGET
            && !writer.has_ansi_escapes()
            && ctx.lookup_current().is_none()
            && meta.fields().iter().all(|field| field.name() == "message");
        if !bare_request_line {
            return self.default.format_event(ctx, writer, event);
        }
        write!(
            writer,
            "{} {:>5} {}: ",
            humantime::format_rfc3339_micros(SystemTime::now()),
            meta.level(),
            meta.target()
        )?;
        let mut message = Message {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut message);
        message.result?;
        writeln!(writer)
    }
}

struct Message<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for Message<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.result = write!(self.writer, "{value:?}");
        }
    }
}

/// Capturing what the text format writes, for tests here and in `http::log`.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex};

    use super::TextFormat;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `emit` logs without colours, through our text format or
    /// (`ours` false) through tracing-subscriber's default one.
    pub(crate) fn text(ours: bool, emit: impl Fn()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false);
        if ours {
            tracing::subscriber::with_default(
                builder.event_format(TextFormat::new()).finish(),
                emit,
            );
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    /// A line without its timestamp, which differs between two runs.
    pub(crate) fn untimed(line: &str) -> &str {
        line.split_once(' ').expect("a timestamp first").1
    }
}

#[cfg(test)]
mod tests {
    use super::capture::{text, untimed};

    /// The lines `emit` logs through the default text format and through ours.
    fn both(emit: impl Fn()) -> (String, String) {
        (text(false, &emit), text(true, &emit))
    }

    #[test]
    fn the_request_line_reads_as_the_default_format_writes_it() {
        let line = "request client=127.0.0.1:4321 method=GET path=/example.com/m/@v/list status=200 bytes=7 duration_ms=0.1 cache=\"hit\"";
        let (default, ours) = both(|| tracing::info!(target: "goproxy::http::log", "{line}"));
        assert_eq!(untimed(&ours), untimed(&default));
        assert!(
            ours.ends_with(&format!("INFO goproxy::http::log: {line}\n")),
            "{ours}"
        );
        let stamp = ours.split(' ').next().unwrap();
        assert_eq!(stamp.len(), "2026-11-26T08:11:21.633624Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");
    }

    #[test]
    fn every_other_event_is_written_by_the_default_format() {
        let (default, ours) = both(|| {
            tracing::info!(target: "goproxy::http::log", status = 200, "request");
            tracing::warn!(target: "goproxy::fetch", "a \x1b[31mred\x1b[0m message");
            let span = tracing::info_span!("outer", id = 7);
            let _entered = span.enter();
            tracing::info!(target: "goproxy::http::log", "inside a span");
        });
        let untimed_lines = |text: &str| {
            text.lines()
                .map(|l| untimed(l).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(untimed_lines(&ours), untimed_lines(&default));
        assert!(ours.contains("outer{id=7}"), "{ours}");
        assert!(
            !ours.contains('\x1b'),
            "escape sequences are still neutralised: {ours}"
        );
    }
}
