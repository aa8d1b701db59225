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
