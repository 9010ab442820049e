//! A strict reader of the Prometheus text exposition format (0.0.4), for
//! tests: every line must be a HELP, TYPE, comment or sample line; names and
//! label names must be valid; each family is declared once, before its
//! samples, and its samples are contiguous; histograms come with `_bucket`
//! (with `le`), `_sum` and `_count`.

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name to its type.
    pub types: HashMap<String, String>,
    pub help: HashMap<String, String>,
    /// Every sample: (metric name, sorted labels) to value.
    pub samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of(name: &str, types: &HashMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.to_owned());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
        {
            return Some(base.to_owned());
        }
    }
    None
}

/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    // `text` starts right after '{'.
    let mut labels = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim();
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label {name}"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match parts.next() {
                Some("HELP") => {
                    let name = parts
                        .next()
                        .ok_or_else(|| err("HELP without name".into()))?;
                    if !valid_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                    if out
                        .help
                        .insert(name.to_owned(), parts.next().unwrap_or("").to_owned())
                        .is_some()
                    {
                        return Err(err("second HELP".into()));
                    }
                }
                Some("TYPE") => {
                    let name = parts
                        .next()
                        .ok_or_else(|| err("TYPE without name".into()))?;
                    let kind = parts
                        .next()
                        .ok_or_else(|| err("TYPE without type".into()))?;
                    if !valid_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(err(format!("unknown type {kind}")));
                    }
                    if out.types.contains_key(name) {
                        return Err(err("second TYPE".into()));
                    }
                    out.types.insert(name.to_owned(), kind.to_owned());
                }
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("sample without value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (mut labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(after) => parse_labels(after).map_err(err)?,
            None => (Vec::new(), &line[name_end..]),
        };
        let mut fields = rest.split_whitespace();
        let value =
            parse_value(fields.next().ok_or_else(|| err("no value".into()))?).map_err(err)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing text".into()));
        }
        let family =
            family_of(name, &out.types).ok_or_else(|| err("sample before its TYPE".into()))?;
        if current.as_deref() != Some(&family) {
            if !done.insert(family.clone()) {
                return Err(err("samples of a family are not contiguous".into()));
            }
            current = Some(family.clone());
        }
        let kind = out.types[&family].as_str();
        match kind {
            "counter" if !name.ends_with("_total") => {
                return Err(err("counter name without _total".into()));
            }
            "counter" if value < 0.0 => return Err(err("negative counter".into())),
            "histogram" if name == family => {
                return Err(err("histogram sample without _bucket/_sum/_count".into()));
            }
            "histogram" if name.ends_with("_bucket") && !labels.iter().any(|(n, _)| n == "le") => {
                return Err(err("bucket without le".into()));
            }
            _ => {}
        }
        labels.sort();
        if out
            .samples
            .insert((name.to_owned(), labels), value)
            .is_some()
        {
            return Err(err("duplicate sample".into()));
        }
    }
    Ok(out)
}

impl Exposition {
    /// The value of `name` with exactly these labels; None when absent.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut key: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sort();
        self.samples.get(&(name.to_owned(), key)).copied()
    }

    /// Like [`get`](Self::get), 0 when absent (a counter never incremented).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Sum over every sample of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Checks one histogram series (`labels` without `le`): buckets sorted by
    /// bound are cumulative, `+Inf` equals `_count`, and the sum fits the
    /// observations. Returns (count, sum).
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (f64, f64) {
        let count = self
            .get(&format!("{name}_count"), labels)
            .unwrap_or_else(|| panic!("{name}_count{labels:?} missing"));
        let sum = self
            .get(&format!("{name}_sum"), labels)
            .unwrap_or_else(|| panic!("{name}_sum{labels:?} missing"));
        let mut buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|((n, l), _)| {
                n == &format!("{name}_bucket")
                    && l.len() == labels.len() + 1
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|((_, l), v)| {
                let le = &l.iter().find(|(k, _)| k == "le").expect("le").1;
                (parse_value(le).expect("le value"), *v)
            })
            .collect();
        assert!(
            buckets.len() > 1,
            "{name}{labels:?}: real buckets, not a summary"
        );
        buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        for pair in buckets.windows(2) {
            assert!(
                pair[0].1 <= pair[1].1,
                "{name}{labels:?}: buckets not cumulative: {buckets:?}"
            );
        }
        let last = buckets.last().unwrap();
        assert!(last.0.is_infinite(), "{name}{labels:?}: no +Inf bucket");
        assert_eq!(last.1, count, "{name}{labels:?}: +Inf bucket != _count");
        assert!(
            sum >= 0.0 && (count > 0.0 || sum == 0.0),
            "{name}{labels:?}: sum {sum}"
        );
        (count, sum)
    }
}
