//! Sizes, speeds and times as people read them, in bars and in log lines.

use std::time::Duration;

use crate::config::human_size;

/// A size without the space, for log fields that must stay one word: `1.2MiB`.
pub(super) fn size_word(bytes: u64) -> String {
    human_size(bytes).replace(' ', "")
}

/// Bytes per second: `512.0 KiB/s`, or `? B/s` while unknown.
pub(super) fn speed(bytes_per_sec: Option<f64>) -> String {
    let Some(bytes_per_sec) = bytes_per_sec else {
        return "? B/s".to_owned();
    };
    let bytes = if bytes_per_sec.is_finite() && bytes_per_sec > 0.0 {
        bytes_per_sec.round() as u64
    } else {
        0
    };
    format!("{}/s", human_size(bytes))
}

/// [`speed`] as one word: `512.0KiB/s`.
pub(super) fn speed_word(bytes_per_sec: Option<f64>) -> String {
    speed(bytes_per_sec).replace(' ', "")
}

/// Time left, rounded up to the second so a download never shows `0s` while
/// bytes are still missing: `4s`, `1m05s`, `2h03m`.
pub(super) fn eta(left: Option<Duration>) -> String {
    let Some(left) = left else {
        return "?".to_owned();
    };
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    clock(secs)
}

/// How long something took, finer when short: `0.4s`, `12s`, `1m05s`.
pub(super) fn took(elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        clock(elapsed.as_secs())
    }
}

fn clock(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3_600..360_000 => format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60),
        _ => ">99h".to_owned(),
    }
}

/// Whole percent, rounded down so that 100% means complete.
pub(super) fn percent(value: f64) -> u64 {
    value.clamp(0.0, 100.0).floor() as u64
}

/// `name` in at most `width` characters: long module paths lose their start,
/// because the end (last path elements and the version) tells downloads apart.
pub(super) fn fit(name: &str, width: usize) -> String {
    let len = name.chars().count();
    if len <= width {
        return name.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = name.chars().skip(len - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_speeds() {
        assert_eq!(size_word(512), "512B");
        assert_eq!(size_word(1536), "1.5KiB");
        assert_eq!(size_word(3 * 1024 * 1024), "3.0MiB");
        assert_eq!(speed(Some(524_288.0)), "512.0 KiB/s");
        assert_eq!(speed(Some(0.0)), "0 B/s");
        assert_eq!(speed(Some(f64::NAN)), "0 B/s");
        assert_eq!(speed(Some(-5.0)), "0 B/s");
        assert_eq!(speed(None), "? B/s");
        assert_eq!(speed_word(Some(2.5 * 1024.0 * 1024.0)), "2.5MiB/s");
        assert_eq!(speed_word(None), "?B/s");
    }

    #[test]
    fn times_left_round_up() {
        assert_eq!(eta(None), "?");
        assert_eq!(eta(Some(Duration::ZERO)), "0s");
        assert_eq!(eta(Some(Duration::from_millis(300))), "1s");
        assert_eq!(eta(Some(Duration::from_secs(59))), "59s");
        assert_eq!(eta(Some(Duration::from_millis(59_001))), "1m00s");
        assert_eq!(eta(Some(Duration::from_secs(65))), "1m05s");
        assert_eq!(
            eta(Some(Duration::from_secs(2 * 3600 + 3 * 60 + 7))),
            "2h03m"
        );
        assert_eq!(eta(Some(Duration::from_secs(100 * 3600))), ">99h");
    }

    #[test]
    fn times_taken_are_finer_when_short() {
        assert_eq!(took(Duration::from_millis(42)), "0.0s");
        assert_eq!(took(Duration::from_millis(380)), "0.4s");
        assert_eq!(took(Duration::from_millis(9_940)), "9.9s");
        assert_eq!(took(Duration::from_millis(12_700)), "12s");
        assert_eq!(took(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn percent_reaches_100_only_when_complete() {
        assert_eq!(percent(99.99), 99);
        assert_eq!(percent(100.0), 100);
        assert_eq!(percent(42.5), 42);
        assert_eq!(percent(-1.0), 0);
        assert_eq!(percent(250.0), 100);
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(fit("example.com/m@v1.0.0", 40), "example.com/m@v1.0.0");
        assert_eq!(fit("example.com/m@v1.0.0", 20), "example.com/m@v1.0.0");
        assert_eq!(fit("example.com/m@v1.0.0", 10), "…/m@v1.0.0");
        assert_eq!(fit("example.com/m@v1.0.0", 10).chars().count(), 10);
        assert_eq!(fit("ab", 0), "");
        assert_eq!(fit("ab", 1), "…");
    }
}
