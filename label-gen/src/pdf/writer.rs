//! A small PDF 1.5 writer for label files: objects are written front to back into memory, every
//! dictionary goes into a compressed object stream, and the file ends with a compressed
//! cross-reference stream.
//!
//! Why not save through lopdf's `Document`: a roll file has a page per label, and as classic
//! objects each page costs about 150 bytes of structure beside its content (the page dictionary,
//! the content stream's header, two cross-reference entries, the entry in `/Kids`). In object
//! streams the page dictionaries, which differ only in two numbers, compress to a few bytes each,
//! and a cross-reference stream with the PNG "up" predictor stores an entry in about a byte. Pages
//! are also written as they fill, so a file being laid out holds only compressed bytes.
//!
//! Objects are lopdf [`Object`]s (the font objects come from printpdf through lopdf) or, on the
//! hot path, bytes the caller formats itself.

use std::io::Write;

use printpdf::lopdf::{Dictionary, Object, Stream, StringFormat};

use crate::Error;

/// Objects per object stream: enough to share a compression dictionary, and the index of an
/// object in its stream fits the cross-reference entry's last field.
const OBJECTS_PER_STREAM: usize = 200;

/// Where an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Not written (object 0, or a number reserved and never used).
    Free,
    /// A direct object at this byte offset.
    At(usize),
    /// The `index`-th object of object stream `stream`.
    Packed { stream: u32, index: u16 },
}

/// A PDF file being written.
#[derive(Debug)]
pub(super) struct PdfWriter {
    out: Vec<u8>,
    /// Indexed by object number.
    entries: Vec<Entry>,
    /// Dictionaries (and other non-stream objects) waiting for the next object stream.
    packed: Vec<(u32, Vec<u8>)>,
}

impl PdfWriter {
    /// Starts a file; object numbers below `first_free` are the caller's to use.
    pub(super) fn new(capacity: usize, first_free: u32) -> Self {
        let mut out = Vec::with_capacity(capacity);
        // A comment with bytes above 127 marks the file as binary for transfer tools.
        out.extend_from_slice(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n");
        Self {
            out,
            entries: vec![Entry::Free; first_free as usize],
            packed: Vec::new(),
        }
    }

    /// A new object number.
    pub(super) fn reserve(&mut self) -> u32 {
        self.entries.push(Entry::Free);
        (self.entries.len() - 1) as u32
    }

    /// Writes object `id`: a stream directly, anything else into an object stream.
    pub(super) fn put(&mut self, id: u32, object: &Object) -> Result<(), Error> {
        match object {
            Object::Stream(stream) => {
                self.put_stream(id, &stream.dict, &stream.content);
                Ok(())
            }
            other => {
                let mut bytes = Vec::new();
                serialize(&mut bytes, other);
                self.put_packed(id, bytes)
            }
        }
    }

    /// Writes a non-stream object given as its serialised bytes into an object stream.
    pub(super) fn put_packed(&mut self, id: u32, bytes: Vec<u8>) -> Result<(), Error> {
        self.packed.push((id, bytes));
        if self.packed.len() >= OBJECTS_PER_STREAM {
            self.flush_packed()?;
        }
        Ok(())
    }

    /// Writes a stream object directly; `dict` must not hold `/Length` (it is written here).
    pub(super) fn put_stream(&mut self, id: u32, dict: &Dictionary, content: &[u8]) {
        self.set(id, Entry::At(self.out.len()));
        let out = &mut self.out;
        let _ = write!(out, "{id} 0 obj\n<<");
        for (key, value) in dict.iter().filter(|(k, _)| k.as_slice() != b"Length") {
            write_name(out, key);
            out.push(b' ');
            serialize(out, value);
        }
        let _ = writeln!(out, "/Length {}>>stream", content.len());
        out.extend_from_slice(content);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    fn set(&mut self, id: u32, entry: Entry) {
        let i = id as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, Entry::Free);
        }
        self.entries[i] = entry;
    }

    /// Writes the waiting objects as one compressed object stream.
    fn flush_packed(&mut self) -> Result<(), Error> {
        if self.packed.is_empty() {
            return Ok(());
        }
        let stream_id = self.reserve();
        let count = self.packed.len();
        let mut header = Vec::new();
        let mut body = Vec::new();
        for (index, (id, bytes)) in std::mem::take(&mut self.packed).into_iter().enumerate() {
            let _ = write!(header, "{id} {} ", body.len());
            body.extend_from_slice(&bytes);
            body.push(b'\n');
            let index = u16::try_from(index)
                .map_err(|_| Error::Pdf("too many objects in an object stream".into()))?;
            self.set(
                id,
                Entry::Packed {
                    stream: stream_id,
                    index,
                },
            );
        }
        let first = header.len();
        header.extend_from_slice(&body);
        let (content, filter) = deflate(header)?;
        let mut dict = Dictionary::from_iter([
            ("Type", Object::Name(b"ObjStm".to_vec())),
            ("N", Object::Integer(count as i64)),
            ("First", Object::Integer(first as i64)),
        ]);
        if filter {
            dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
        }
        self.put_stream(stream_id, &dict, &content);
        Ok(())
    }

    /// Ends the file with a cross-reference stream naming `root` (the catalog) and `info`.
    pub(super) fn finish(mut self, root: u32, info: u32) -> Result<Vec<u8>, Error> {
        self.flush_packed()?;
        let xref_id = self.reserve();
        let xref_offset = self.out.len();
        self.set(xref_id, Entry::At(xref_offset));

        // Fields: type (1 byte), offset or object stream (as few bytes as the file needs),
        // generation or index (2 bytes).
        let widest = xref_offset.max(self.entries.len());
        let middle = (1..=8)
            .find(|n| *n >= 8 || widest < 1usize << (8 * n))
            .unwrap_or(8);
        let columns = 1 + middle + 2;
        let mut rows = Vec::with_capacity(self.entries.len() * (columns + 1));
        let mut plain = Vec::with_capacity(self.entries.len() * columns);
        let mut previous = vec![0u8; columns];
        let mut row = vec![0u8; columns];
        for (id, entry) in self.entries.iter().enumerate() {
            let (kind, value, last) = match *entry {
                // Object 0 heads the list of free objects, with generation 65535.
                Entry::Free if id == 0 => (0u8, 0usize, u16::MAX),
                Entry::Free => (0, 0, 0),
                Entry::At(offset) => (1, offset, 0),
                Entry::Packed { stream, index } => (2, stream as usize, index),
            };
            row[0] = kind;
            row[1..=middle].copy_from_slice(&value.to_be_bytes()[8 - middle..]);
            row[middle + 1..].copy_from_slice(&last.to_be_bytes());
            // PNG "up" predictor: each byte minus the one above it; rows differ in a few bytes.
            rows.push(2);
            rows.extend(row.iter().zip(&previous).map(|(b, a)| b.wrapping_sub(*a)));
            plain.extend_from_slice(&row);
            std::mem::swap(&mut previous, &mut row);
        }
        // The predictor is a parameter of the Flate filter: a file too small to compress gets
        // the plain rows.
        let (content, filter) = match deflate(rows)? {
            (compressed, true) => (compressed, true),
            (_, false) => (plain, false),
        };
        let mut dict = Dictionary::from_iter([
            ("Type", Object::Name(b"XRef".to_vec())),
            ("Size", Object::Integer(self.entries.len() as i64)),
            (
                "W",
                Object::Array(vec![1.into(), (middle as i64).into(), 2.into()]),
            ),
            ("Root", Object::Reference((root, 0))),
            ("Info", Object::Reference((info, 0))),
        ]);
        if filter {
            dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
            dict.set(
                "DecodeParms",
                Object::Dictionary(Dictionary::from_iter([
                    ("Predictor", Object::Integer(12)),
                    ("Columns", Object::Integer(columns as i64)),
                ])),
            );
        }
        self.put_stream(xref_id, &dict, &content);
        let _ = write!(self.out, "startxref\n{xref_offset}\n%%EOF\n");
        Ok(self.out)
    }
}

/// Flate-compresses `bytes` if that makes them smaller; the flag says whether it did.
///
/// Through lopdf's own compression (flate2), which printpdf already builds.
pub(super) fn deflate(bytes: Vec<u8>) -> Result<(Vec<u8>, bool), Error> {
    let mut stream = Stream::new(Dictionary::new(), bytes);
    stream
        .compress()
        .map_err(|e| Error::Pdf(format!("compressing a stream: {e}")))?;
    let compressed = stream.dict.get(b"Filter").is_ok();
    Ok((stream.content, compressed))
}

/// Appends the PDF syntax for `object` (not a stream: streams are written by `put_stream`).
pub(super) fn serialize(out: &mut Vec<u8>, object: &Object) {
    match object {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Object::Real(r) => write_real(out, *r),
        Object::Name(name) => write_name(out, name),
        Object::String(bytes, StringFormat::Hexadecimal) => {
            out.push(b'<');
            for b in bytes {
                let _ = write!(out, "{b:02X}");
            }
            out.push(b'>');
        }
        Object::String(bytes, StringFormat::Literal) => {
            out.push(b'(');
            for &b in bytes {
                match b {
                    b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
            out.push(b')');
        }
        Object::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                serialize(out, item);
            }
            out.push(b']');
        }
        Object::Dictionary(dict) => {
            out.extend_from_slice(b"<<");
            for (key, value) in dict.iter() {
                write_name(out, key);
                out.push(b' ');
                serialize(out, value);
            }
            out.extend_from_slice(b">>");
        }
        // Streams are always indirect objects; the writer never nests one.
        Object::Stream(_) => out.extend_from_slice(b"null"),
        Object::Reference((id, generation)) => {
            let _ = write!(out, "{id} {generation} R");
        }
    }
}

/// A real number without exponent and without trailing zeros.
fn write_real(out: &mut Vec<u8>, value: f32) {
    let start = out.len();
    let _ = write!(out, "{value:.4}");
    while out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
    if &out[start..] == b"-0" {
        out.truncate(start);
        out.push(b'0');
    }
}

/// A name, with `#xx` for bytes that may not appear in one.
fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    out.push(b'/');
    for &b in name {
        let regular = (b'!'..=b'~').contains(&b) && !b"()<>[]{}/%#".contains(&b);
        if regular {
            out.push(b);
        } else {
            let _ = write!(out, "#{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printpdf::lopdf::Document;

    #[test]
    fn a_file_too_small_to_compress_reads_back() {
        let mut w = PdfWriter::new(64, 3);
        w.put_packed(1, b"<</Type/Catalog/Pages 2 0 R>>".to_vec())
            .unwrap();
        w.put_packed(2, b"<</Type/Pages/Kids[]/Count 0>>".to_vec())
            .unwrap();
        let bytes = w.finish(1, 1).unwrap();
        let doc = Document::load_mem(&bytes).unwrap();
        assert_eq!(doc.get_pages().len(), 0);
        assert!(doc.get_object((2, 0)).is_ok());
    }

    #[test]
    fn a_written_file_reads_back_with_its_packed_and_direct_objects() {
        let mut w = PdfWriter::new(1024, 4);
        w.put(
            1,
            &Object::Dictionary(Dictionary::from_iter([
                ("Type", Object::Name(b"Catalog".to_vec())),
                ("Pages", Object::Reference((2, 0))),
            ])),
        )
        .unwrap();
        w.put(
            3,
            &Object::Dictionary(Dictionary::from_iter([
                ("Title", Object::string_literal("a (b) \\ c")),
                ("Odd name", Object::Name(b"A B#".to_vec())),
                ("Real", Object::Real(-0.00001)),
            ])),
        )
        .unwrap();
        let mut kids = Vec::new();
        // More pages than one object stream holds.
        for _ in 0..450 {
            let content = w.reserve();
            let page = w.reserve();
            w.put_stream(content, &Dictionary::new(), b"0 0 m 10 10 l S");
            w.put_packed(
                page,
                format!("<</Type/Page/Parent 2 0 R/Contents {content} 0 R>>").into_bytes(),
            )
            .unwrap();
            kids.push(Object::Reference((page, 0)));
        }
        let n = kids.len() as i64;
        w.put(
            2,
            &Object::Dictionary(Dictionary::from_iter([
                ("Type", Object::Name(b"Pages".to_vec())),
                ("Kids", Object::Array(kids)),
                ("Count", Object::Integer(n)),
                (
                    "MediaBox",
                    Object::Array(vec![0.into(), 0.into(), 100.into(), 100.into()]),
                ),
            ])),
        )
        .unwrap();
        let bytes = w.finish(1, 3).unwrap();

        let doc = Document::load_mem(&bytes).unwrap();
        assert_eq!(doc.get_pages().len(), 450);
        let info = doc.get_object((3, 0)).unwrap().as_dict().unwrap();
        assert_eq!(info.get(b"Title").unwrap().as_str().unwrap(), b"a (b) \\ c");
        assert_eq!(info.get(b"Odd name").unwrap().as_name().unwrap(), b"A B#");
        assert_eq!(info.get(b"Real").unwrap().as_float().unwrap(), 0.0);
        let first_page = *doc.get_pages().values().next().unwrap();
        assert_eq!(
            doc.get_page_content(first_page).unwrap(),
            b"0 0 m 10 10 l S"
        );
    }
}
