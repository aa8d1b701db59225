//! The template's text in the column right of the QR: line breaking (Chinese anywhere, Latin at
//! spaces) and placing the product name and fields at the largest sizes that fit.

use super::font::{glyph_bytes, Glyph, LabelFont};
use super::settings::LabelTemplate;
use super::MM_PER_PT;
use crate::Error;

/// A line of text placed relative to the cell's top-left corner.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PlacedLine {
    pub(super) text: String,
    pub(super) glyphs: Vec<u8>,
    pub(super) size_pt: f32,
    pub(super) x_mm: f32,
    pub(super) baseline_mm: f32,
}

/// The text column right of the QR, relative to the cell's top-left corner, in mm.
pub(super) struct Column {
    pub(super) x: f32,
    pub(super) width: f32,
    pub(super) top: f32,
    pub(super) bottom: f32,
}

/// Which text may be wrapped onto several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wrap {
    Nothing,
    FieldsOnly,
    Anything,
}

/// Font sizes to try, and which lines may wrap.
pub(super) struct TextSizes {
    pub(super) name_pt: f32,
    pub(super) field_pt: f32,
    pub(super) wrap: Wrap,
}

/// Places the product name (at most 3 lines) and the fields in the text column, or `None` if they
/// do not fit at these sizes.
pub(super) fn place_column(
    font: &LabelFont,
    template: &LabelTemplate,
    sizes: &TextSizes,
    column: &Column,
) -> Result<Option<Vec<PlacedLine>>, Error> {
    let (name_pt, field_pt) = (sizes.name_pt, sizes.field_pt);
    let asc = font.ascender_em();
    let mut placed = Vec::new();
    let mut y = column.top;
    let mut blocks: Vec<(&str, f32, usize)> = Vec::new();
    if !template.product_name.trim().is_empty() {
        blocks.push((template.product_name.as_str(), name_pt, 3));
    }
    for field in &template.fields {
        if !field.trim().is_empty() {
            blocks.push((field.as_str(), field_pt, 4));
        }
    }
    let has_name = !template.product_name.trim().is_empty();
    for (i, (text, size_pt, max_lines)) in blocks.into_iter().enumerate() {
        let size_mm = size_pt * MM_PER_PT;
        let wrapped = wrap(font, text, size_mm, column.width)?;
        let may_wrap = match sizes.wrap {
            Wrap::Nothing => false,
            Wrap::FieldsOnly => i > 0 || !has_name,
            Wrap::Anything => true,
        };
        if wrapped.len() > max_lines || (!may_wrap && wrapped.len() > text.split('\n').count()) {
            return Ok(None);
        }
        if i == 1 {
            y += 0.4 * size_mm; // a little air between the name and the fields
        }
        for line in wrapped {
            let baseline = y + asc * size_mm;
            y += 1.2 * size_mm;
            if y > column.bottom + 1e-3 {
                return Ok(None);
            }
            placed.push(PlacedLine {
                glyphs: glyph_bytes(&line),
                text: line.iter().map(|g| g.ch).collect(),
                size_pt,
                x_mm: column.x,
                baseline_mm: baseline,
            });
        }
    }
    Ok(Some(placed))
}

/// Greedy line breaking: at the last space of the line if it has one, else between any two
/// characters (as Chinese text breaks); `\n` always. Lines come back as glyphs, trimmed.
fn wrap(font: &LabelFont, text: &str, size_mm: f32, width: f32) -> Result<Vec<Vec<Glyph>>, Error> {
    let trim = |mut line: Vec<Glyph>| {
        while line.last().is_some_and(|g| g.ch == ' ') {
            line.pop();
        }
        line
    };
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line: Vec<Glyph> = Vec::new();
        let mut w = 0.0;
        for g in font.shape(paragraph.trim())? {
            let gw = g.advance * size_mm;
            if !line.is_empty() && w + gw > width {
                if g.ch == ' ' {
                    lines.push(trim(std::mem::take(&mut line)));
                    w = 0.0;
                    continue;
                }
                let rest = match line.iter().rposition(|x| x.ch == ' ') {
                    Some(at) => line.split_off(at + 1),
                    None => Vec::new(),
                };
                lines.push(trim(std::mem::replace(&mut line, rest)));
                w = line.iter().map(|x| x.advance * size_mm).sum();
            }
            if line.is_empty() && g.ch == ' ' {
                continue;
            }
            line.push(g);
            w += gw;
        }
        if !line.is_empty() {
            lines.push(trim(line));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::fixtures::{font, template};
    use crate::pdf::LabelTemplate;

    fn column(width: f32, height: f32) -> Column {
        Column {
            x: 20.0,
            width,
            top: 5.0,
            bottom: 5.0 + height,
        }
    }

    fn sizes(name_pt: f32, field_pt: f32, wrap: Wrap) -> TextSizes {
        TextSizes {
            name_pt,
            field_pt,
            wrap,
        }
    }

    #[test]
    fn the_name_comes_first_then_a_little_air_then_the_fields() {
        let font = font();
        let t = template();
        let placed = place_column(
            &font,
            &t,
            &sizes(12.0, 8.0, Wrap::Nothing),
            &column(50.0, 29.0),
        )
        .unwrap()
        .unwrap();
        let texts: Vec<&str> = placed.iter().map(|l| l.text.as_str()).collect();
        let mut expected = vec![t.product_name.as_str()];
        expected.extend(t.fields.iter().map(String::as_str));
        assert_eq!(texts, expected);
        assert!(placed.iter().all(|l| l.x_mm == 20.0));
        let sizes: Vec<f32> = placed.iter().map(|l| l.size_pt).collect();
        assert_eq!(sizes, [12.0, 8.0, 8.0, 8.0]);
        let first = 5.0 + font.ascender_em() * 12.0 * MM_PER_PT;
        assert!((placed[0].baseline_mm - first).abs() < 1e-4);
        let gaps: Vec<f32> = placed
            .windows(2)
            .map(|w| w[1].baseline_mm - w[0].baseline_mm)
            .collect();
        assert!(gaps.iter().all(|g| *g > 0.0), "{gaps:?}");
        assert!((gaps[1] - gaps[2]).abs() < 1e-4, "{gaps:?}");
    }

    #[test]
    fn text_that_does_not_fit_is_none_not_cut() {
        let font = font();
        let t = template();
        let fits = |s: TextSizes, c: Column| place_column(&font, &t, &s, &c).unwrap();
        // Too short a column.
        assert_eq!(
            fits(sizes(12.0, 8.0, Wrap::Nothing), column(50.0, 8.0)),
            None
        );
        // Too narrow to keep every line whole; wrapping anywhere fits, in more lines.
        assert_eq!(
            fits(sizes(6.0, 5.0, Wrap::Nothing), column(15.0, 100.0)),
            None
        );
        let wrapped = fits(sizes(6.0, 5.0, Wrap::Anything), column(15.0, 100.0)).unwrap();
        assert!(wrapped.len() > 4, "{wrapped:?}");
        for line in &wrapped {
            let em: f32 = font
                .shape(&line.text)
                .unwrap()
                .iter()
                .map(|g| g.advance)
                .sum();
            assert!(em * line.size_pt * MM_PER_PT <= 15.0 + 1e-3, "{line:?}");
        }
        // An empty template fits anywhere.
        let empty = LabelTemplate::default();
        assert_eq!(
            place_column(
                &font,
                &empty,
                &sizes(12.0, 8.0, Wrap::Nothing),
                &column(1.0, 1.0)
            )
            .unwrap(),
            Some(Vec::new())
        );
    }

    #[test]
    fn wrapping_breaks_chinese_anywhere_and_latin_at_spaces() {
        let font = font();
        let text = |lines: Vec<Vec<Glyph>>| -> Vec<String> {
            lines
                .iter()
                .map(|l| l.iter().map(|g| g.ch).collect())
                .collect()
        };
        let lines = text(wrap(&font, "华宁柑橘华宁柑橘", 4.0, 17.0).unwrap());
        assert_eq!(lines, vec!["华宁柑橘", "华宁柑橘"]);
        let lines = text(wrap(&font, "华宁柑橘 特级果", 4.0, 20.0).unwrap());
        assert_eq!(lines, vec!["华宁柑橘", "特级果"]);
        let lines = text(wrap(&font, "green food certified", 4.0, 30.0).unwrap());
        assert!(lines
            .iter()
            .all(|l| !l.starts_with(' ') && !l.ends_with(' ')));
        assert_eq!(lines.concat().replace(' ', ""), "greenfoodcertified");
        assert!(
            lines[0].ends_with("food") || lines[0].ends_with("green"),
            "{lines:?}"
        );
        assert!(matches!(
            wrap(&font, "\u{10FFFD}", 4.0, 30.0),
            Err(Error::MissingGlyph { .. })
        ));
    }
}
