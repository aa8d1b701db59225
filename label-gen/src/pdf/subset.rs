//! The CJK font subset of a run, made once and embedded in every file of the run.
//!
//! printpdf 0.7 subsets a TrueType font (with allsorts) and builds the PDF font objects around it
//! (Type0 / CIDFontType2 with Identity-H, widths, `ToUnicode`) when it saves a document, renumbering
//! the glyphs. Every file of a run uses the same glyphs (the digits and space of the short code and
//! the template's text), so this is done once: a one-page document that shows exactly those glyphs
//! is saved by printpdf and read back with lopdf; its font objects are kept, and its page, whose
//! one `Tj` listed the original glyph ids in order, tells how printpdf renumbered them. Label files
//! then copy the objects and write the new glyph ids.
//!
//! Doing it once per run instead of once per file also takes the subsetting (parsing a 5 MB font)
//! out of every file's save.

use std::collections::{BTreeSet, HashMap};
use std::io::Cursor;

use printpdf::lopdf::content::{Content, Operation};
use printpdf::lopdf::{Document, Object, ObjectId, StringFormat};
use printpdf::{Mm, PdfDocument};

use super::LabelFont;
use crate::Error;

/// A font subset as PDF objects, ready to be copied into a label file.
#[derive(Debug, Clone)]
pub(super) struct SubsetFont {
    /// The Type0 font first; references between them point at `first_id + index`.
    objects: Vec<Object>,
    first_id: u32,
    /// Original glyph id → glyph id in the subset.
    glyphs: HashMap<u16, u16>,
}

impl SubsetFont {
    /// Subsets `font` to `glyphs`, numbering the font objects from `first_id` on.
    pub(super) fn new(
        font: &LabelFont,
        glyphs: &BTreeSet<u16>,
        first_id: u32,
    ) -> Result<Self, Error> {
        let failed = |what: &str| Error::Pdf(format!("subsetting {}: {what}", font.path.display()));
        let original: Vec<u16> = glyphs.iter().copied().collect();

        let (doc, page, layer) = PdfDocument::new("font subset", Mm(10.0), Mm(10.0), "glyphs");
        let pdf_font = doc
            .add_external_font(Cursor::new(font.bytes.as_slice()))
            .map_err(|e| Error::Pdf(format!("embedding {}: {e}", font.path.display())))?;
        let layer = doc.get_page(page).get_layer(layer);
        layer.begin_text_section();
        layer.set_font(&pdf_font, 10.0);
        layer.add_operation(Operation::new(
            "Tj",
            vec![Object::String(
                original.iter().flat_map(|g| g.to_be_bytes()).collect(),
                StringFormat::Hexadecimal,
            )],
        ));
        layer.end_text_section();
        drop(layer);
        let bytes = doc
            .save_to_bytes()
            .map_err(|e| failed(&format!("saving: {e}")))?;
        let saved =
            Document::load_mem(&bytes).map_err(|e| failed(&format!("reading back: {e}")))?;

        // How printpdf renumbered the glyphs: the page's one Tj, in the order written.
        let page_id = *saved
            .get_pages()
            .values()
            .next()
            .ok_or_else(|| failed("no page"))?;
        let content = saved
            .get_page_content(page_id)
            .map_err(|e| failed(&format!("page content: {e}")))?;
        let ops = Content::decode(&content).map_err(|e| failed(&format!("page content: {e}")))?;
        let shown = ops
            .operations
            .iter()
            .find(|op| op.operator == "Tj")
            .and_then(|op| op.operands.first())
            .and_then(|s| s.as_str().ok())
            .ok_or_else(|| failed("no text on the page"))?;
        if shown.len() != 2 * original.len() {
            return Err(failed("glyph count changed"));
        }
        let glyphs = original
            .iter()
            .zip(shown.chunks_exact(2))
            .map(|(old, new)| (*old, u16::from_be_bytes([new[0], new[1]])))
            .collect();

        // The Type0 font and everything it refers to, renumbered in the order met.
        let type0 = saved
            .objects
            .iter()
            .find(|(_, o)| {
                o.as_dict().is_ok_and(|d| {
                    d.get(b"Subtype")
                        .and_then(Object::as_name)
                        .is_ok_and(|n| n == b"Type0")
                })
            })
            .map(|(id, _)| *id)
            .ok_or_else(|| failed("no Type0 font"))?;
        let mut order: Vec<ObjectId> = vec![type0];
        let mut index: HashMap<ObjectId, u32> = HashMap::from([(type0, first_id)]);
        let mut next = 0;
        while next < order.len() {
            let object = saved
                .objects
                .get(&order[next])
                .ok_or_else(|| failed("dangling reference"))?;
            for id in references(object) {
                let number = first_id + order.len() as u32;
                if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(id) {
                    slot.insert(number);
                    order.push(id);
                }
            }
            next += 1;
        }
        let mut objects = Vec::with_capacity(order.len());
        for id in &order {
            let mut object = saved
                .objects
                .get(id)
                .cloned()
                .ok_or_else(|| failed("dangling reference"))?;
            renumber(&mut object, &index);
            if let Object::Stream(stream) = &mut object {
                // printpdf stores the font program uncompressed; Flate takes about a third off.
                stream
                    .compress()
                    .map_err(|e| failed(&format!("compressing: {e}")))?;
            }
            objects.push(object);
        }
        Ok(Self {
            objects,
            first_id,
            glyphs,
        })
    }

    /// The Type0 font object's id in a label file.
    pub(super) fn font_id(&self) -> ObjectId {
        (self.first_id, 0)
    }

    /// The glyph id in the subset of an original glyph id (0, `.notdef`, for a glyph that was not
    /// asked for; the layout asks for every glyph it uses).
    pub(super) fn glyph(&self, original: u16) -> u16 {
        self.glyphs.get(&original).copied().unwrap_or(0)
    }

    /// Glyph-id string bytes (two big-endian bytes per glyph) renumbered for the subset.
    pub(super) fn renumber_text(&self, original: &[u8]) -> Vec<u8> {
        original
            .chunks_exact(2)
            .flat_map(|b| self.glyph(u16::from_be_bytes([b[0], b[1]])).to_be_bytes())
            .collect()
    }

    /// The font objects with their ids in a label file.
    pub(super) fn objects(&self) -> impl Iterator<Item = (u32, &Object)> {
        (self.first_id..).zip(&self.objects)
    }

    /// The first id after the font objects.
    pub(super) fn end_id(&self) -> u32 {
        self.first_id + self.objects.len() as u32
    }
}

/// The ids an object refers to, in order.
fn references(object: &Object) -> Vec<ObjectId> {
    let mut out = Vec::new();
    let mut stack = vec![object];
    while let Some(o) = stack.pop() {
        match o {
            Object::Reference(id) => out.push(*id),
            Object::Array(items) => stack.extend(items.iter().rev()),
            Object::Dictionary(d) => stack.extend(d.iter().map(|(_, v)| v).rev()),
            Object::Stream(s) => stack.extend(s.dict.iter().map(|(_, v)| v).rev()),
            _ => {}
        }
    }
    out
}

/// Rewrites every reference in `object` through `index`.
fn renumber(object: &mut Object, index: &HashMap<ObjectId, u32>) {
    match object {
        Object::Reference(id) => {
            if let Some(new) = index.get(id) {
                *id = (*new, 0);
            }
        }
        Object::Array(items) => items.iter_mut().for_each(|o| renumber(o, index)),
        Object::Dictionary(d) => d.iter_mut().for_each(|(_, v)| renumber(v, index)),
        Object::Stream(s) => s.dict.iter_mut().for_each(|(_, v)| renumber(v, index)),
        _ => {}
    }
}
