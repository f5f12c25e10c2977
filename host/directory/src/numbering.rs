//! The tenant's numbering plan and E.164 normalisation.

use serde::{Deserialize, Serialize};

/// Most digits an E.164 number may have (ITU-T E.164 §6), country code included.
pub const E164_MAX_DIGITS: usize = 15;

/// The tenant's numbering plan: `[numbering]` in the tenant configuration.
///
/// It tells the host how to turn whatever a caller, a phone display or a
/// plugin hands over (`+49 8142 4799 123`, `0049-81424799123`, `08142/4799-123`,
/// `4799123`, `123`) into one E.164 form (`+4981424799123`), which is the form
/// the directory is searched with and cached under.
///
/// ```toml
/// [numbering]
/// country_code = "49"             # without "+" or international prefix
/// area_code = "8142"              # without the national prefix "0"
/// base_number = "4799"            # the site's main number, without extension
/// extension_ranges = ["100-199", "2000-2999"]
/// # international_prefix = "00"   # default
/// # national_prefix = "0"         # default; "" for plans without one
/// # outside_line_prefix = "0"     # digit(s) dialled on the PBX before outside numbers
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberingPlan {
    /// Country calling code without `+`, e.g. `"49"` (Germany) or `"1"` (NANP).
    pub country_code: String,
    /// Area code without the national prefix, e.g. `"8142"`; may be empty for
    /// closed numbering plans (then local numbers are national numbers).
    pub area_code: String,
    /// The site's main number inside the area, without extension, e.g. `"4799"`.
    pub base_number: String,
    /// Internal extension ranges, each `"FROM-TO"` (digits of equal length,
    /// e.g. `"100-199"`) or a single extension (`"0"`, `"555"`).
    #[serde(default)]
    pub extension_ranges: Vec<String>,
    /// Prefix for international calls, `"00"` by default (`"011"` in NANP).
    #[serde(default = "default_international_prefix")]
    pub international_prefix: String,
    /// Prefix for national calls, `"0"` by default (`"1"` in NANP); may be
    /// empty for plans without one.
    #[serde(default = "default_national_prefix")]
    pub national_prefix: String,
    /// The digit(s) dialled on the PBX to get an outside line (e.g. `"0"` in
    /// Germany, `"9"` in North America), if the phones use one.
    #[serde(default)]
    pub outside_line_prefix: Option<String>,
}

fn default_international_prefix() -> String {
    "00".to_owned()
}

fn default_national_prefix() -> String {
    "0".to_owned()
}

/// Why a number could not be normalised to E.164.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Nothing but blanks and separators.
    #[error("the number is empty")]
    Empty,
    /// A character that is neither a digit nor an allowed separator.
    #[error(
        "{input:?} is not a phone number: {ch:?} is not allowed (use digits, a leading '+', spaces, '-', '.', '/', '(' and ')')"
    )]
    InvalidCharacter {
        /// The raw input.
        input: String,
        /// The first offending character.
        ch: char,
    },
    /// A `+` that is not the first character.
    #[error("{input:?} is not a phone number: '+' is only allowed at the start")]
    MisplacedPlus {
        /// The raw input.
        input: String,
    },
    /// The number stops where more digits are required (e.g. only a prefix).
    #[error("{input:?} is incomplete: {what}")]
    Incomplete {
        /// The raw input.
        input: String,
        /// What is missing.
        what: String,
    },
    /// The result would start with `+0` (no country code begins with 0).
    #[error(
        "{input:?} gives {e164:?}, which is not an E.164 number (a country code never starts with 0)"
    )]
    BadCountryCode {
        /// The raw input.
        input: String,
        /// The (invalid) result.
        e164: String,
    },
    /// The result has more than 15 digits.
    #[error("{input:?} gives {e164:?}, longer than the 15 digits E.164 allows")]
    TooLong {
        /// The raw input.
        input: String,
        /// The (invalid) result.
        e164: String,
    },
}

/// One parsed extension range: digits of equal length, `from <= to`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExtRange {
    from: String,
    to: String,
}

impl ExtRange {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (from, to) = match text.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (text, text),
        };
        if from.is_empty() || !all_digits(from) || to.is_empty() || !all_digits(to) {
            return Err(format!(
                "{text:?} is not a range: write \"FROM-TO\" with digits, e.g. \"100-199\", or a single extension"
            ));
        }
        if from.len() != to.len() {
            return Err(format!(
                "{text:?}: both ends must have the same number of digits (extensions of different lengths need separate ranges)"
            ));
        }
        if from > to {
            return Err(format!("{text:?}: the start is greater than the end"));
        }
        Ok(ExtRange {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    fn contains(&self, digits: &str) -> bool {
        digits.len() == self.from.len()
            && digits >= self.from.as_str()
            && digits <= self.to.as_str()
    }
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn check_digits(field: &str, value: &str, may_be_empty: bool) -> Result<(), String> {
    if value.is_empty() {
        if may_be_empty {
            return Ok(());
        }
        return Err(format!("numbering.{field} is empty"));
    }
    if !all_digits(value) {
        return Err(format!(
            "numbering.{field} = {value:?}: only digits are allowed (no '+', spaces or separators)"
        ));
    }
    Ok(())
}

impl NumberingPlan {
    /// Validate the plan; the message names the offending field.
    pub fn check(&self) -> Result<(), String> {
        check_digits("country_code", &self.country_code, false)?;
        if self.country_code.starts_with('0') {
            return Err(format!(
                "numbering.country_code = {:?}: write the country code without the international prefix, e.g. \"49\"",
                self.country_code
            ));
        }
        if self.country_code.len() > 3 {
            return Err(format!(
                "numbering.country_code = {:?}: country codes have 1 to 3 digits",
                self.country_code
            ));
        }
        check_digits("international_prefix", &self.international_prefix, false)?;
        check_digits("national_prefix", &self.national_prefix, true)?;
        if let Some(outside) = &self.outside_line_prefix {
            check_digits("outside_line_prefix", outside, false)?;
        }
        check_digits("area_code", &self.area_code, true)?;
        if !self.national_prefix.is_empty() && self.area_code.starts_with(&self.national_prefix) {
            return Err(format!(
                "numbering.area_code = {:?} starts with the national prefix {:?}: write it without, e.g. {:?}",
                self.area_code,
                self.national_prefix,
                &self.area_code[self.national_prefix.len()..]
            ));
        }
        check_digits(
            "base_number",
            &self.base_number,
            self.extension_ranges.is_empty(),
        )?;
        let mut longest = 0;
        for (i, text) in self.extension_ranges.iter().enumerate() {
            let range = ExtRange::parse(text)
                .map_err(|e| format!("numbering.extension_ranges[{i}]: {e}"))?;
            longest = longest.max(range.from.len());
        }
        let digits =
            self.country_code.len() + self.area_code.len() + self.base_number.len() + longest;
        if digits > E164_MAX_DIGITS {
            return Err(format!(
                "numbering: country_code + area_code + base_number + the longest extension make {digits} digits, more than the 15 E.164 allows"
            ));
        }
        Ok(())
    }

    fn ranges(&self) -> impl Iterator<Item = ExtRange> + '_ {
        self.extension_ranges
            .iter()
            .filter_map(|r| ExtRange::parse(r).ok())
    }

    /// Whether `digits` is one of the site's internal extensions.
    pub fn is_extension(&self, digits: &str) -> bool {
        !digits.is_empty() && all_digits(digits) && self.ranges().any(|r| r.contains(digits))
    }

    /// `+` country code, area code and base number: the E.164 prefix every
    /// internal number starts with.
    pub fn site_prefix(&self) -> String {
        format!(
            "+{}{}{}",
            self.country_code, self.area_code, self.base_number
        )
    }

    /// Normalise a number as written or dialled to E.164 (`+4981424799123`).
    ///
    /// Spaces, `-`, `.`, `/`, `(` and `)` are ignored; a `+` is only allowed
    /// first, and in a `+` number a `(0)` (as in `+49 (0)8142 …`) is dropped. The digits are then read by the first rule that applies:
    ///
    /// 1. `+…` is international;
    /// 2. exactly one of the `extension_ranges` → site prefix + extension
    ///    (before the prefixes, so extensions win, e.g. `"123"` with the
    ///    NANP national prefix `"1"`);
    /// 3. international prefix followed by a country code → international;
    /// 4. with an `outside_line_prefix`, the number starts with it and what
    ///    follows is an outside number → that prefix is stripped and the rest
    ///    read as international (after the international prefix), national
    ///    (after the national prefix) or local; the local reading is only
    ///    taken when the whole number does not also start with the national
    ///    prefix (so with outside line `"0"` and national prefix `"0"`,
    ///    `"08142…"` stays national);
    /// 5. national prefix → country code + the rest;
    /// 6. anything else is local → country code + area code + the digits.
    ///
    /// The result has at most 15 digits and does not start with `+0`.
    pub fn normalize(&self, raw: &str) -> Result<String, NumberError> {
        let mut plus = false;
        let mut digits = String::with_capacity(raw.len());
        let mut text = raw.trim().to_owned();
        if text.starts_with('+') {
            // "+49 (0)8142 …": the "(0)" only tells national callers to dial 0.
            text = text.replace("(0)", "");
        }
        for (i, ch) in text.chars().enumerate() {
            match ch {
                '0'..='9' => digits.push(ch),
                '+' if i == 0 => plus = true,
                '+' => {
                    return Err(NumberError::MisplacedPlus {
                        input: raw.to_owned(),
                    });
                }
                ' ' | '\t' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' => {}
                _ => {
                    return Err(NumberError::InvalidCharacter {
                        input: raw.to_owned(),
                        ch,
                    });
                }
            }
        }
        if digits.is_empty() {
            if plus {
                return Err(incomplete(raw, "nothing follows '+'"));
            }
            return Err(NumberError::Empty);
        }
        let e164 = if plus {
            format!("+{digits}")
        } else {
            self.classify(raw, &digits)?
        };
        if e164.starts_with("+0") {
            return Err(NumberError::BadCountryCode {
                input: raw.to_owned(),
                e164,
            });
        }
        if e164.len() - 1 > E164_MAX_DIGITS {
            return Err(NumberError::TooLong {
                input: raw.to_owned(),
                e164,
            });
        }
        Ok(e164)
    }

    fn classify(&self, raw: &str, digits: &str) -> Result<String, NumberError> {
        if self.is_extension(digits) {
            return Ok(format!("{}{digits}", self.site_prefix()));
        }
        let intl = self.international_prefix.as_str();
        let national = self.national_prefix.as_str();
        if let Some(rest) = digits.strip_prefix(intl)
            && !rest.starts_with('0')
        {
            if rest.is_empty() {
                return Err(incomplete(raw, "nothing follows the international prefix"));
            }
            return Ok(format!("+{rest}"));
        }
        if let Some(outside) = self.outside_line_prefix.as_deref()
            && let Some(rest) = digits.strip_prefix(outside)
            && !rest.is_empty()
            && !self.is_extension(rest)
        {
            if let Some(number) = rest.strip_prefix(intl) {
                if number.is_empty() {
                    return Err(incomplete(raw, "nothing follows the international prefix"));
                }
                return Ok(format!("+{number}"));
            }
            if !national.is_empty()
                && let Some(number) = rest.strip_prefix(national)
            {
                if number.is_empty() {
                    return Err(incomplete(raw, "nothing follows the national prefix"));
                }
                return Ok(format!("+{}{number}", self.country_code));
            }
            if national.is_empty() || !digits.starts_with(national) {
                return Ok(format!("+{}{}{rest}", self.country_code, self.area_code));
            }
        }
        if !national.is_empty()
            && let Some(rest) = digits.strip_prefix(national)
        {
            if rest.is_empty() {
                return Err(incomplete(raw, "nothing follows the national prefix"));
            }
            return Ok(format!("+{}{rest}", self.country_code));
        }
        Ok(format!("+{}{}{digits}", self.country_code, self.area_code))
    }

    /// The extension of an internal E.164 number: `+4981424799123` → `"123"`
    /// when the site prefix is `+4981424799` and `123` is in an extension
    /// range; `None` for outside numbers (and anything not in E.164 form).
    pub fn extension_of(&self, e164: &str) -> Option<String> {
        let rest = e164.strip_prefix(&self.site_prefix())?;
        self.is_extension(rest).then(|| rest.to_owned())
    }
}

fn incomplete(raw: &str, what: &str) -> NumberError {
    NumberError::Incomplete {
        input: raw.to_owned(),
        what: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> NumberingPlan {
        NumberingPlan {
            country_code: "49".into(),
            area_code: "8142".into(),
            base_number: "4799".into(),
            extension_ranges: vec!["100-199".into(), "2000-2999".into()],
            international_prefix: "00".into(),
            national_prefix: "0".into(),
            outside_line_prefix: None,
        }
    }

    fn de_outside() -> NumberingPlan {
        NumberingPlan {
            outside_line_prefix: Some("0".into()),
            ..de()
        }
    }

    fn nanp() -> NumberingPlan {
        NumberingPlan {
            country_code: "1".into(),
            area_code: "555".into(),
            base_number: "867".into(),
            extension_ranges: vec!["5300-5399".into(), "100-199".into()],
            international_prefix: "011".into(),
            national_prefix: "1".into(),
            outside_line_prefix: Some("9".into()),
        }
    }

    fn table(plan: &NumberingPlan, cases: &[(&str, &str)]) {
        plan.check().expect("plan is valid");
        for (raw, want) in cases {
            assert_eq!(
                plan.normalize(raw).as_deref(),
                Ok(*want),
                "normalize({raw:?}) with {plan:?}"
            );
        }
    }

    #[test]
    fn the_three_forms_agree() {
        let want = "+4981424799123";
        for plan in [de(), de_outside()] {
            table(
                &plan,
                &[
                    ("+49 8142 4799 123", want),
                    ("0049-81424799123", want),
                    ("123", want),
                ],
            );
        }
    }

    #[test]
    fn german_plan_without_outside_line() {
        table(
            &de(),
            &[
                ("+49 (8142) 4799-123", "+4981424799123"),
                ("+49 (0)8142 4799-123", "+4981424799123"), // "(0)": national prefix note
                ("+49 (0) 8142 4799-123", "+4981424799123"),
                ("08142/4799-123", "+4981424799123"),
                ("08142 4799 123", "+4981424799123"),
                ("4799123", "+4981424799123"),
                ("4799-0", "+49814247990"),
                ("  2500 ", "+49814247992500"),
                ("089 1234567", "+49891234567"),
                ("0043 1 5880", "+4315880"),
                ("+1 (555) 867-5309", "+15558675309"),
                ("1.2.3", "+4981424799123"),
                ("\t+49\u{a0}8142 4799123 ", "+4981424799123"),
                // Not in a range: local numbers in the area.
                ("99", "+49814299"),
                ("1000", "+4981421000"),
                ("200", "+498142200"),
            ],
        );
    }

    #[test]
    fn german_plan_with_outside_line() {
        table(
            &de_outside(),
            &[
                // outside line + international form
                ("0 0043 1 5880", "+4315880"),
                ("000431 5880", "+4315880"),
                // the international prefix alone still wins ("0049…" above)
                ("0043 1 5880", "+4315880"),
                // national form without the outside line stays national
                ("089 1234567", "+49891234567"),
                // ambiguous: outside line "0" + local "4799123" reads as the
                // national number 04799123 because "0" is also the national prefix
                ("04799123", "+494799123"),
                // without any prefix: local
                ("4799123", "+4981424799123"),
                // extensions win over everything
                ("150", "+4981424799150"),
                // ambiguous: outside line "0" + national "08142…" is also
                // international "00" + "8142…" (+81 is Japan): the
                // international reading wins, as it does for "0049…"
                ("0 08142 4799123", "+81424799123"),
            ],
        );
    }

    #[test]
    fn nanp_plan() {
        table(
            &nanp(),
            &[
                ("+1 555 867 5309", "+15558675309"),
                ("5309", "+15558675309"),
                ("123", "+1555867123"), // extension, not national "1" + "23"
                ("1 415 555 1234", "+14155551234"),
                ("9 1 415 555 1234", "+14155551234"),
                ("9 555 1234", "+15555551234"), // outside line + local
                ("9 011 49 8142 4799123", "+4981424799123"),
                ("011 49 8142 4799123", "+4981424799123"),
                ("555-1234", "+15555551234"),
                // "9" + an extension is not an outside number: read as local digits
                ("95309", "+155595309"),
            ],
        );
    }

    #[test]
    fn plan_without_area_code_or_national_prefix() {
        let dk = NumberingPlan {
            country_code: "45".into(),
            area_code: String::new(),
            base_number: "3312".into(),
            extension_ranges: vec!["1000-1999".into()],
            international_prefix: "00".into(),
            national_prefix: String::new(),
            outside_line_prefix: Some("0".into()),
        };
        table(
            &dk,
            &[
                ("1234", "+4533121234"),
                ("33 12 12 34", "+4533121234"),
                ("0 33121234", "+4533121234"),
                ("0 0049 8142 4799123", "+4981424799123"),
                ("0049 8142 4799123", "+4981424799123"),
            ],
        );
        assert_eq!(dk.extension_of("+4533121234").as_deref(), Some("1234"));
    }

    #[test]
    fn errors() {
        let plan = de_outside();
        let cases: &[(&str, NumberError)] = &[
            ("", NumberError::Empty),
            ("  - ( ) ", NumberError::Empty),
            ("+", incomplete("+", "nothing follows '+'")),
            ("0", incomplete("0", "nothing follows the national prefix")),
            (
                "00",
                incomplete("00", "nothing follows the international prefix"),
            ),
            (
                "000",
                incomplete("000", "nothing follows the international prefix"),
            ),
            (
                "0800-FLOWERS",
                NumberError::InvalidCharacter {
                    input: "0800-FLOWERS".into(),
                    ch: 'F',
                },
            ),
            (
                "alice",
                NumberError::InvalidCharacter {
                    input: "alice".into(),
                    ch: 'a',
                },
            ),
            (
                "123;ext=4",
                NumberError::InvalidCharacter {
                    input: "123;ext=4".into(),
                    ch: ';',
                },
            ),
            (
                "49+8142",
                NumberError::MisplacedPlus {
                    input: "49+8142".into(),
                },
            ),
            (
                "+049 8142",
                NumberError::BadCountryCode {
                    input: "+049 8142".into(),
                    e164: "+0498142".into(),
                },
            ),
            (
                "+49 8142 4799 1234 5678",
                NumberError::TooLong {
                    input: "+49 8142 4799 1234 5678".into(),
                    e164: "+49814247991234 5678".replace(' ', ""),
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                plan.normalize(raw).as_ref(),
                Err(want),
                "normalize({raw:?})"
            );
        }
        // Messages are readable and quote the input.
        let msg = plan.normalize("0800-FLOWERS").unwrap_err().to_string();
        assert!(
            msg.contains("\"0800-FLOWERS\"") && msg.contains("'F'"),
            "{msg}"
        );
        assert_eq!(
            plan.normalize(" ").unwrap_err().to_string(),
            "the number is empty"
        );
    }

    #[test]
    fn extension_of_is_the_inverse_for_internal_numbers() {
        let plan = de();
        for ext in ["100", "123", "199", "2000", "2999"] {
            let e164 = plan.normalize(ext).unwrap();
            assert_eq!(plan.extension_of(&e164).as_deref(), Some(ext), "{e164}");
        }
        for outside in [
            "+4981424799",     // the main number itself
            "+49814247990",    // 0 is not in a range
            "+49814247991234", // 1234 is not in a range
            "+4981424799200",  // 200 not in a range
            "+4989123456",     // another area
            "+4981424798123",  // another base number
            "4981424799123",   // not E.164
            "",
        ] {
            assert_eq!(plan.extension_of(outside), None, "{outside}");
        }
    }

    #[test]
    fn check_names_the_field() {
        let cases: Vec<(NumberingPlan, &str)> = vec![
            (
                NumberingPlan {
                    country_code: "+49".into(),
                    ..de()
                },
                "numbering.country_code",
            ),
            (
                NumberingPlan {
                    country_code: "0049".into(),
                    ..de()
                },
                "without the international prefix",
            ),
            (
                NumberingPlan {
                    country_code: "".into(),
                    ..de()
                },
                "numbering.country_code is empty",
            ),
            (
                NumberingPlan {
                    area_code: "08142".into(),
                    ..de()
                },
                "numbering.area_code = \"08142\" starts with the national prefix \"0\": write it without, e.g. \"8142\"",
            ),
            (
                NumberingPlan {
                    area_code: "8142 ".into(),
                    ..de()
                },
                "numbering.area_code",
            ),
            (
                NumberingPlan {
                    base_number: "".into(),
                    ..de()
                },
                "numbering.base_number is empty",
            ),
            (
                NumberingPlan {
                    extension_ranges: vec!["100-199".into(), "10-199".into()],
                    ..de()
                },
                "numbering.extension_ranges[1]: \"10-199\": both ends must have the same number of digits",
            ),
            (
                NumberingPlan {
                    extension_ranges: vec!["199-100".into()],
                    ..de()
                },
                "start is greater than the end",
            ),
            (
                NumberingPlan {
                    extension_ranges: vec!["1xx".into()],
                    ..de()
                },
                "numbering.extension_ranges[0]: \"1xx\" is not a range",
            ),
            (
                NumberingPlan {
                    international_prefix: "".into(),
                    ..de()
                },
                "numbering.international_prefix is empty",
            ),
            (
                NumberingPlan {
                    outside_line_prefix: Some("".into()),
                    ..de()
                },
                "numbering.outside_line_prefix is empty",
            ),
            (
                NumberingPlan {
                    base_number: "47991234".into(),
                    extension_ranges: vec!["10000-19999".into()],
                    ..de()
                },
                "more than the 15 E.164 allows",
            ),
        ];
        for (plan, want) in cases {
            let err = plan.check().expect_err(want);
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
        de().check().unwrap();
        nanp().check().unwrap();
        // No extensions: the base number may be empty (e.g. a DID-only site).
        NumberingPlan {
            base_number: "".into(),
            extension_ranges: vec![],
            ..de()
        }
        .check()
        .unwrap();
    }
}
