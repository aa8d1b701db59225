//! The checks every free-text field and every number of an input model goes through.
//!
//! Why one place: a text without a cap ends up in a consumer's page (one 200,000-character note made a scan
//! page weigh 209 KB), in CSV and EPCIS exports and in PDFs; a NUL or another control character breaks
//! PostgreSQL's text type, terminals and printed labels; a number like 1e308 overflows every sum and chart it
//! meets. So each field names its maximum here, and the refusals are alike everywhere: 422 with a stable code
//! (`missing_field`, `field_too_long`, `invalid_characters`, `invalid_number`) and a message that starts with
//! the field's name.

use crate::error::{CoreError, CoreResult};

/// Whether a text may span several lines (notes, addresses, reasons) or is one line (names, units, codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Names and short labels: product, site, organisation names, pesticide names.
pub const NAME_CHARS: usize = 200;
/// Units and other short words (kg, ml/亩, 倍液).
pub const UNIT_CHARS: usize = 20;
/// Reasons of corrections, recalls and voids.
pub const REASON_CHARS: usize = 500;
/// Notes: the longest text a record carries.
pub const NOTE_CHARS: usize = 2000;

/// Checks a text's length in characters and its characters: no control character at all in a one-line
/// text; in a multi-line text only line feed, carriage return and tab.
pub fn text(field: &str, value: &str, max_chars: usize, lines: Lines) -> CoreResult<()> {
    if value.chars().count() > max_chars {
        return Err(CoreError::invalid(
            "field_too_long",
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = value.chars().find(|&c| c.is_control() && !allowed(c)) {
        return Err(CoreError::invalid(
            "invalid_characters",
            format!(
                "{field} contains the control character U+{:04X}{}",
                u32::from(c),
                if lines == Lines::One {
                    " (it is a one-line text)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

/// [`text`], and the text must not be empty or blank.
pub fn required(field: &str, value: &str, max_chars: usize, lines: Lines) -> CoreResult<()> {
    if value.trim().is_empty() {
        return Err(CoreError::invalid(
            "missing_field",
            format!("{field} must not be empty"),
        ));
    }
    text(field, value, max_chars, lines)
}

/// [`text`] for a field that may be absent.
pub fn optional(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
    lines: Lines,
) -> CoreResult<()> {
    value.map_or(Ok(()), |v| text(field, v, max_chars, lines))
}

/// The largest quantity, volume or measured value accepted: far above any real harvest or shipment (a
/// billion kg), far below where sums and charts lose precision or overflow.
pub const MAX_AMOUNT: f64 = 1e9;
/// The largest dose per area or dilution factor (e.g. 3000 倍液).
pub const MAX_DOSE: f64 = 1e6;

/// A finite number within `[min, max]`.
pub fn number(field: &str, value: f64, min: f64, max: f64) -> CoreResult<()> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "invalid_number",
            format!("{field} must be a number from {min} to {max}"),
        ))
    }
}

/// A finite number greater than zero and at most `max`.
pub fn positive(field: &str, value: f64, max: f64) -> CoreResult<()> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "invalid_number",
            format!("{field} must be a positive number of at most {max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: CoreResult<()>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        assert_eq!(code(text("name", &"柑".repeat(200), 200, Lines::One)), "ok");
        assert_eq!(
            code(text("name", &"柑".repeat(201), 200, Lines::One)),
            "field_too_long"
        );
        assert_eq!(
            code(required("name", " ", 200, Lines::One)),
            "missing_field"
        );
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_multi_line_text() {
        assert_eq!(
            code(text("t", "a\0b", 10, Lines::Many)),
            "invalid_characters"
        );
        assert_eq!(
            code(text("t", "a\u{1b}b", 10, Lines::Many)),
            "invalid_characters"
        );
        assert_eq!(code(text("t", "a\nb\tc", 10, Lines::Many)), "ok");
        assert_eq!(
            code(text("t", "a\nb", 10, Lines::One)),
            "invalid_characters"
        );
        let err = text("details.text", "\0", 10, Lines::Many).unwrap_err();
        assert!(err.to_string().starts_with("details.text "), "{err}");
    }

    #[test]
    fn numbers_are_finite_and_bounded() {
        assert_eq!(code(positive("dose", 30.0, MAX_DOSE)), "ok");
        assert_eq!(code(positive("dose", 1e308, MAX_DOSE)), "invalid_number");
        assert_eq!(code(positive("dose", f64::NAN, MAX_DOSE)), "invalid_number");
        assert_eq!(code(positive("dose", 0.0, MAX_DOSE)), "invalid_number");
        assert_eq!(code(number("value", 0.0, 0.0, MAX_AMOUNT)), "ok");
        assert_eq!(
            code(number("value", -1.0, 0.0, MAX_AMOUNT)),
            "invalid_number"
        );
    }
}
