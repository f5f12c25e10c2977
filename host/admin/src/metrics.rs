//! Metrics as data ([`Metric`]) and their Prometheus text exposition (format 0.0.4).
//!
//! The backend describes each metric family once: name, help, type and its
//! samples. Rendering escapes help text and label values, replaces characters
//! that are not allowed in metric and label names by `_`, writes non-finite
//! values as `NaN`, `+Inf`, `-Inf`, and merges families that share a name so
//! that the output never declares a family twice.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Family name, e.g. `plugboard_calls_active`; `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub name: String,
    /// One line of help (newlines and backslashes are escaped).
    pub help: String,
    /// The family's type.
    #[serde(rename = "type")]
    pub kind: MetricKind,
    /// The samples; may be empty.
    pub samples: Vec<Sample>,
}

/// The type of a metric family (the `# TYPE` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Monotonic total; by convention its name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Samples with suffixes `_bucket` (label `le`), `_sum` and `_count`.
    Histogram,
    /// Samples with label `quantile`, and suffixes `_sum` and `_count`.
    Summary,
    /// Anything else.
    Untyped,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
            MetricKind::Untyped => "untyped",
        }
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Appended to the family name: empty for most, `_bucket`, `_sum`, `_count` for histograms.
    #[serde(default)]
    pub suffix: String,
    /// Label pairs, in output order; e.g. `[("tenant", "a.test")]`.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample without suffix.
    pub fn new(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            suffix: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }
}

/// Renders the families as Prometheus text exposition format 0.0.4.
pub fn render(metrics: &[Metric]) -> String {
    // Merge families with the same (sanitised) name, keeping first-seen order.
    let mut order: Vec<(String, &Metric, Vec<&Sample>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for m in metrics {
        let name = sanitize_name(&m.name, true);
        match index.get(&name) {
            Some(&i) => order[i].2.extend(m.samples.iter()),
            None => {
                index.insert(name.clone(), order.len());
                order.push((name, m, m.samples.iter().collect()));
            }
        }
    }
    let mut out = String::new();
    for (name, m, samples) in order {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&m.help));
        let _ = writeln!(out, "# TYPE {name} {}", m.kind.as_str());
        for s in samples {
            out.push_str(&name);
            out.push_str(&sanitize_suffix(&s.suffix));
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}=\"{}\"", sanitize_name(k, false), escape_label(v));
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&format_value(s.value));
            out.push('\n');
        }
    }
    out
}

/// Metric names may contain `:`, label names may not; neither may start with a digit.
fn sanitize_name(name: &str, metric: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
        if ok || (i > 0 && c.is_ascii_digit()) {
            out.push(c);
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn sanitize_suffix(suffix: &str) -> String {
    suffix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Display gives the shortest round-trip decimal without an exponent
        // ("3", "0.25", "0.0000001"), which Prometheus parses.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_labels_and_escapes() {
        let metrics = vec![
            Metric {
                name: "plugboard_calls_active".into(),
                help: "Calls in progress.\nPer tenant \\ total.".into(),
                kind: MetricKind::Gauge,
                samples: vec![
                    Sample::new(&[("tenant", "a.test")], 2.0),
                    Sample::new(&[("tenant", "we\"ird\\te\nnant")], 0.5),
                ],
            },
            Metric {
                name: "plugboard_setup_seconds".into(),
                help: "Call setup time.".into(),
                kind: MetricKind::Histogram,
                samples: vec![
                    Sample {
                        suffix: "_bucket".into(),
                        labels: vec![("le".into(), "0.5".into())],
                        value: 3.0,
                    },
                    Sample {
                        suffix: "_bucket".into(),
                        labels: vec![("le".into(), "+Inf".into())],
                        value: 4.0,
                    },
                    Sample {
                        suffix: "_sum".into(),
                        labels: vec![],
                        value: 1.25,
                    },
                    Sample {
                        suffix: "_count".into(),
                        labels: vec![],
                        value: 4.0,
                    },
                ],
            },
        ];
        let text = render(&metrics);
        assert_eq!(
            text,
            "# HELP plugboard_calls_active Calls in progress.\\nPer tenant \\\\ total.\n\
             # TYPE plugboard_calls_active gauge\n\
             plugboard_calls_active{tenant=\"a.test\"} 2\n\
             plugboard_calls_active{tenant=\"we\\\"ird\\\\te\\nnant\"} 0.5\n\
             # HELP plugboard_setup_seconds Call setup time.\n\
             # TYPE plugboard_setup_seconds histogram\n\
             plugboard_setup_seconds_bucket{le=\"0.5\"} 3\n\
             plugboard_setup_seconds_bucket{le=\"+Inf\"} 4\n\
             plugboard_setup_seconds_sum 1.25\n\
             plugboard_setup_seconds_count 4\n"
        );
    }

    #[test]
    fn special_values_names_and_duplicates() {
        let metrics = vec![
            Metric {
                name: "9bad-name".into(),
                help: String::new(),
                kind: MetricKind::Untyped,
                samples: vec![
                    Sample::new(&[("bad-label", "x")], f64::NAN),
                    Sample::new(&[], f64::INFINITY),
                ],
            },
            Metric {
                name: "9bad-name".into(),
                help: "ignored".into(),
                kind: MetricKind::Counter,
                samples: vec![Sample::new(&[], f64::NEG_INFINITY)],
            },
            Metric {
                name: "tiny".into(),
                help: "h".into(),
                kind: MetricKind::Counter,
                samples: vec![Sample::new(&[], 1e-7)],
            },
        ];
        let text = render(&metrics);
        assert_eq!(
            text,
            "# HELP _9bad_name \n\
             # TYPE _9bad_name untyped\n\
             _9bad_name{bad_label=\"x\"} NaN\n\
             _9bad_name +Inf\n\
             _9bad_name -Inf\n\
             # HELP tiny h\n\
             # TYPE tiny counter\n\
             tiny 0.0000001\n"
        );
    }

    #[test]
    fn serde_shape() {
        let m: Metric = serde_json::from_value(serde_json::json!({
            "name": "x_total", "help": "h", "type": "counter",
            "samples": [{"labels": [["tenant", "a.test"]], "value": 3}]
        }))
        .unwrap();
        assert_eq!(m.kind, MetricKind::Counter);
        assert_eq!(m.samples[0].labels[0].1, "a.test");
    }
}
