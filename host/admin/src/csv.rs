//! CDRs as CSV (RFC 4180): a header row, CRLF line ends, quoting where needed.
//!
//! Columns are [`FIXED_COLUMNS`] in that order (always present, so scripts can
//! rely on positions), then every other key found in any record, sorted.
//! Cells: strings as they are, numbers and booleans as JSON text, `null` and
//! missing keys empty, objects and arrays as compact JSON text. A cell is
//! quoted when it contains a comma, a double quote, CR or LF, or starts or
//! ends with a space; double quotes inside are doubled.
//!
//! Cells are not defused against spreadsheet formula injection (`=`, `+`,
//! `-`, `@` at the start): numbers such as `+4930...` must stay intact for
//! scripts. Open the file as text, not with formula evaluation.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::ApiError;

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8; header=present";

/// The first columns, in this order.
pub const FIXED_COLUMNS: [&str; 10] = [
    "call_id",
    "tenant",
    "from",
    "to",
    "start_ms",
    "answer_ms",
    "end_ms",
    "disposition",
    "plugin",
    "plugin_version",
];

/// Renders an array of objects as CSV; anything else is a backend fault (500).
pub fn render(records: &Value) -> Result<String, ApiError> {
    let rows = records
        .as_array()
        .ok_or_else(|| ApiError::internal("the backend returned CDRs that are not an array"))?;
    let mut extra = BTreeSet::new();
    let mut objects = Vec::with_capacity(rows.len());
    for row in rows {
        let obj = row.as_object().ok_or_else(|| {
            ApiError::internal("the backend returned a CDR that is not an object")
        })?;
        for k in obj.keys() {
            if !FIXED_COLUMNS.contains(&k.as_str()) {
                extra.insert(k.as_str());
            }
        }
        objects.push(obj);
    }
    let columns: Vec<&str> = FIXED_COLUMNS.iter().copied().chain(extra).collect();
    let mut out = String::new();
    write_row(&mut out, columns.iter().map(|c| (*c).to_owned()));
    for obj in objects {
        write_row(
            &mut out,
            columns
                .iter()
                .map(|c| cell(obj.get(*c).unwrap_or(&Value::Null))),
        );
    }
    Ok(out)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_row(out: &mut String, cells: impl Iterator<Item = String>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let quote = c.contains([',', '"', '\r', '\n']) || c.starts_with(' ') || c.ends_with(' ');
        if quote {
            out.push('"');
            out.push_str(&c.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&c);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_quoting_and_nested_values() {
        let cdrs = json!([
            {
                "call_id": "abc@host", "tenant": "a.test", "from": "\"Bob, Jr\" <101>",
                "to": "+4930123", "start_ms": 1000, "answer_ms": null, "end_ms": 2000,
                "disposition": "no-answer", "zeta": true, "alpha": {"k": [1, 2]}
            },
            {"call_id": "x", "note": "line1\nline2", "plugin": "attendant", "plugin_version": "1.0.0"}
        ]);
        let text = render(&cdrs).unwrap();
        let expected = "call_id,tenant,from,to,start_ms,answer_ms,end_ms,disposition,plugin,plugin_version,alpha,note,zeta\r\n\
            abc@host,a.test,\"\"\"Bob, Jr\"\" <101>\",+4930123,1000,,2000,no-answer,,,\"{\"\"k\"\":[1,2]}\",,true\r\n\
            x,,,,,,,,attendant,1.0.0,,\"line1\nline2\",\r\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_list_has_header_only() {
        let text = render(&json!([])).unwrap();
        assert_eq!(text, format!("{}\r\n", FIXED_COLUMNS.join(",")));
    }

    #[test]
    fn non_array_is_internal_error() {
        assert_eq!(render(&json!({"a": 1})).unwrap_err().status, 500);
        assert_eq!(render(&json!([1])).unwrap_err().status, 500);
    }
}
