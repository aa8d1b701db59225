//! Writing PDF content: the numbers, strings and lengths of content-stream operators, and the
//! template's text as a form XObject drawn in every cell.

use std::io::Write;

use printpdf::lopdf::{Dictionary, Object, ObjectId, Stream, StringFormat};

use super::text::PlacedLine;
use super::MM_PER_PT;
use crate::Error;

/// The template's lines as a form XObject whose origin is the cell's top-left corner (y up, in
/// points), so that one copy per file serves every label: on a roll, where each label is a page,
/// the text would otherwise be repeated, and compressed alone, on every page.
pub(super) fn template_form(
    lines: &[PlacedLine],
    cell_w_mm: f32,
    cell_h_mm: f32,
    font: ObjectId,
) -> Result<Stream, Error> {
    let mut content = Vec::new();
    content.extend_from_slice(b"BT\n");
    for line in lines {
        content.extend_from_slice(b"/F ");
        push_num(&mut content, line.size_pt);
        content.extend_from_slice(b"Tf 1 0 0 1 ");
        push_mm(&mut content, line.x_mm);
        push_mm(&mut content, -line.baseline_mm);
        content.extend_from_slice(b"Tm ");
        push_hex_string(&mut content, &line.glyphs);
        content.extend_from_slice(b" Tj\n");
    }
    content.extend_from_slice(b"ET\n");
    let dict = Dictionary::from_iter([
        ("Type", Object::Name(b"XObject".to_vec())),
        ("Subtype", Object::Name(b"Form".to_vec())),
        (
            "BBox",
            Object::Array(vec![
                0.into(),
                Object::Real(-cell_h_mm / MM_PER_PT),
                Object::Real(cell_w_mm / MM_PER_PT),
                0.into(),
            ]),
        ),
        (
            "Resources",
            Object::Dictionary(Dictionary::from_iter([(
                "Font",
                Object::Dictionary(Dictionary::from_iter([("F", Object::Reference(font))])),
            )])),
        ),
    ]);
    let mut stream = Stream::new(dict, content);
    stream
        .compress()
        .map_err(|e| Error::Pdf(format!("compressing the template: {e}")))?;
    Ok(stream)
}

/// A PDF text string: literal if it is printable ASCII, else UTF-16BE with a byte order mark.
pub(super) fn text_string(text: &str) -> Object {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        Object::string_literal(text)
    } else {
        let mut bytes = vec![0xfe, 0xff];
        bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// Appends a number of points and a space to a content stream, with at most three decimals
/// (a thousandth of a point is 0.35 µm).
pub(super) fn push_num(out: &mut Vec<u8>, value: f32) {
    let start = out.len();
    let _ = write!(out, "{value:.3}");
    while out.len() > start && out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
    if &out[start..] == b"-0" {
        out.truncate(start);
        out.push(b'0');
    }
    out.push(b' ');
}

/// Appends a length given in mm, in points.
pub(super) fn push_mm(out: &mut Vec<u8>, mm: f32) {
    push_num(out, mm / MM_PER_PT);
}

/// Appends `<…>` with the bytes in hex.
pub(super) fn push_hex_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'<');
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push(b'>');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(value: f32) -> String {
        let mut out = Vec::new();
        push_num(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_have_at_most_three_decimals_and_no_trailing_zeros() {
        assert_eq!(num(1.0), "1 ");
        assert_eq!(num(0.5), "0.5 ");
        assert_eq!(num(100.0), "100 ");
        assert_eq!(num(1.23456), "1.235 ");
        assert_eq!(num(-2.25), "-2.25 ");
        assert_eq!(num(0.0), "0 ");
        assert_eq!(num(-0.0001), "0 ");
    }

    #[test]
    fn lengths_in_mm_are_written_in_points() {
        let mut out = Vec::new();
        push_mm(&mut out, 25.4);
        push_mm(&mut out, 10.0 * MM_PER_PT);
        assert_eq!(out, b"72 10 ");
    }

    #[test]
    fn strings_are_hex_or_literal_or_utf16() {
        let mut out = b"x".to_vec();
        push_hex_string(&mut out, &[0x00, 0xab, 0x10]);
        assert_eq!(out, b"x<00AB10>");
        assert!(matches!(
            text_string("Suyuan labels"),
            Object::String(bytes, StringFormat::Literal) if bytes == b"Suyuan labels"
        ));
        assert!(matches!(
            text_string("溯源"),
            Object::String(bytes, StringFormat::Hexadecimal)
                if bytes == [0xfe, 0xff, 0x6e, 0xaf, 0x6e, 0x90]
        ));
    }

    #[test]
    fn the_template_form_draws_each_line_from_the_cells_top_left_corner() {
        let line = PlacedLine {
            text: "溯源".into(),
            glyphs: vec![0x00, 0x05, 0x01, 0x02],
            size_pt: 8.0,
            x_mm: 25.4,
            baseline_mm: 10.0 * MM_PER_PT,
        };
        let form = template_form(&[line], 70.0, 36.0, (6, 0)).unwrap();
        // lopdf leaves content this short uncompressed (compressing would not make it smaller).
        let content = match form.dict.get(b"Filter") {
            Ok(_) => form.decompressed_content().unwrap(),
            Err(_) => form.content.clone(),
        };
        assert_eq!(
            content,
            b"BT\n/F 8 Tf 1 0 0 1 72 -10 Tm <00050102> Tj\nET\n"
        );
        let bbox = form.dict.get(b"BBox").unwrap().as_array().unwrap();
        let corners: Vec<f32> = bbox.iter().map(|v| v.as_float().unwrap()).collect();
        assert_eq!(corners.len(), 4);
        assert_eq!((corners[0], corners[3]), (0.0, 0.0));
        assert!((corners[1] + 36.0 / MM_PER_PT).abs() < 1e-3, "{corners:?}");
        assert!((corners[2] - 70.0 / MM_PER_PT).abs() < 1e-3, "{corners:?}");
    }
}
