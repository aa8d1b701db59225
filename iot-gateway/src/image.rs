//! Camera images: a JPEG from a device, checked, thumbnailed and stored once by content hash.
//!
//! An image is evidence on a consumer's scan page ("photos of the plot during the growing
//! period"), so only a whole, decodable JPEG is kept, and it is kept byte for byte as the camera
//! sent it. The checks run cheapest first, so a hostile payload costs little:
//!
//! 1. the byte limit (before anything else);
//! 2. the JPEG magic and a walk over the marker structure up to the end-of-image marker, which
//!    refuses truncated uploads that a lenient decoder would fill with grey;
//! 3. the header's dimensions against the pixel limit — *before* any pixel buffer exists, so a
//!    30,000 × 30,000 header (a 2.7 GB decode) is refused at the cost of reading its header;
//! 4. a full decode (with the decoder's allocation limit set as a second guard).
//!
//! Storage is content-addressed: `{media}/ab/cd/<sha256>.jpg` and `<sha256>.thumb.jpg`. A
//! redelivered message, or two cameras sending the same picture, store one file; the path is a
//! pure function of the bytes, so two gateway replicas writing the same image race harmlessly.
//! Files are written to a temporary name, fsynced, renamed into place and the folder fsynced, so
//! that a file that exists is complete and survives a power cut — the database row that points at
//! it is committed only after [`MediaStore::store_jpeg`] returns.
//!
//! Decoding a 40-megapixel JPEG takes a few hundred milliseconds of CPU: callers in async code
//! run this on a blocking thread.

use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ::image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use ::image::{DynamicImage, ImageDecoder, ImageError, Limits};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ImageLimits;
use crate::counters::{Reason, Refusal};
use crate::error::Error;

/// An image as stored: what the database row records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredImage {
    /// SHA-256 of the original bytes, lower-case hex: the image's identity.
    pub sha256: String,
    /// Size of the original in bytes.
    pub bytes: u64,
    /// Width as displayed (after the EXIF orientation is applied).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
    /// The original, relative to the media folder, `/`-separated (`ab/cd/<sha256>.jpg`), so the
    /// row stays valid when the folder moves.
    pub path: String,
    /// The thumbnail, relative to the media folder (`ab/cd/<sha256>.thumb.jpg`).
    pub thumb_path: String,
    /// Whether this call wrote the original (false: it was already stored).
    pub newly_stored: bool,
}

/// A JPEG that passed every check, decoded and turned upright.
#[derive(Debug, Clone)]
pub struct CheckedJpeg {
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// The pixels, EXIF orientation applied.
    pub image: DynamicImage,
}

/// Checks a payload and decodes it (steps 1–4 of the module doc).
pub fn check_jpeg(bytes: &[u8], limits: &ImageLimits) -> Result<CheckedJpeg, Refusal> {
    let decoder = open_checked(bytes, limits)?;
    let sha256 = sha256_hex(bytes);
    let image = decode(decoder, limits)?;
    Ok(CheckedJpeg { sha256, image })
}

/// Steps 1–3: everything but the pixels.
fn open_checked<'a>(
    bytes: &'a [u8],
    limits: &ImageLimits,
) -> Result<JpegDecoder<Cursor<&'a [u8]>>, Refusal> {
    if bytes.len() > limits.max_bytes {
        return Err(Refusal::new(
            Reason::ImageTooLarge,
            format!("{} bytes, limit {}", bytes.len(), limits.max_bytes),
        ));
    }
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(Refusal::new(
            Reason::NotJpeg,
            "no JPEG start-of-image marker",
        ));
    }
    if let Err(problem) = check_structure(bytes) {
        return Err(Refusal::new(Reason::NotJpeg, problem));
    }
    let decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(not_jpeg)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(Refusal::new(Reason::NotJpeg, "zero width or height"));
    }
    if pixels > limits.max_pixels {
        return Err(Refusal::new(
            Reason::ImageTooManyPixels,
            format!(
                "{width}×{height} = {pixels} pixels, limit {}",
                limits.max_pixels
            ),
        ));
    }
    Ok(decoder)
}

fn decode(
    mut decoder: JpegDecoder<Cursor<&[u8]>>,
    limits: &ImageLimits,
) -> Result<DynamicImage, Refusal> {
    // Second guard: the decoder's own allocation limit, 4 bytes per allowed pixel plus slack.
    let mut decode_limits = Limits::default();
    decode_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(1 << 20));
    decoder.set_limits(decode_limits).map_err(not_jpeg)?;
    let orientation = decoder.orientation().map_err(not_jpeg)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(not_jpeg)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn not_jpeg(e: ImageError) -> Refusal {
    match e {
        ImageError::Limits(e) => Refusal::new(Reason::ImageTooManyPixels, e.to_string()),
        e => Refusal::new(Reason::NotJpeg, e.to_string()),
    }
}

/// Walks the JPEG marker segments from SOI to EOI, skipping entropy-coded data after each SOS.
///
/// Refuses a payload that ends before its end-of-image marker (a cut upload) or whose segment
/// lengths run past the end. Bytes after EOI are allowed (some cameras append data there).
fn check_structure(bytes: &[u8]) -> Result<(), &'static str> {
    let mut i = 2; // after SOI
    loop {
        if bytes.get(i) != Some(&0xFF) {
            return Err("truncated or corrupt: expected a marker");
        }
        while bytes.get(i) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let Some(&marker) = bytes.get(i) else {
            return Err("truncated: ends inside a marker");
        };
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            0xD0..=0xD7 | 0x01 => continue, // RSTn and TEM stand alone
            0xD8 | 0x00 => return Err("corrupt: unexpected marker"),
            _ => {
                let len = match bytes.get(i..i + 2) {
                    Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => return Err("truncated: ends inside a segment header"),
                };
                if len < 2 {
                    return Err("corrupt: segment length below 2");
                }
                i += len;
                if i > bytes.len() {
                    return Err("truncated: a segment runs past the end");
                }
                if marker == 0xDA {
                    i = skip_entropy_coded(bytes, i).ok_or("truncated: image data has no end")?;
                }
            }
        }
    }
}

/// The index of the next marker after entropy-coded data starting at `from` (in which `FF 00` is
/// a stuffed byte and `FF D0`–`FF D7` are restart markers).
fn skip_entropy_coded(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let ff = i + bytes.get(i..)?.iter().position(|&b| b == 0xFF)?;
        match bytes.get(ff + 1)? {
            0x00 | 0xD0..=0xD7 => i = ff + 2,
            _ => return Some(ff),
        }
    }
}

/// Encodes a thumbnail: longest side at most `thumb_max_side` (never enlarged), no metadata, at
/// `thumb_quality`.
pub fn thumbnail_jpeg(image: &DynamicImage, limits: &ImageLimits) -> Result<Vec<u8>, Error> {
    let side = limits.thumb_max_side;
    let small = if image.width() > side || image.height() > side {
        image.thumbnail(side, side)
    } else {
        image.clone()
    };
    // JPEG holds grey or RGB: drop alpha, keep grey pictures grey.
    let small = if small.color().has_color() {
        DynamicImage::ImageRgb8(small.to_rgb8())
    } else {
        DynamicImage::ImageLuma8(small.to_luma8())
    };
    let mut out = Vec::with_capacity(32 * 1024);
    JpegEncoder::new_with_quality(&mut out, limits.thumb_quality)
        .encode_image(&small)
        .map_err(|e| Error::io("encode thumbnail", "", std::io::Error::other(e)))?;
    Ok(out)
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The media folder: images and thumbnails stored once by content hash.
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

impl MediaStore {
    /// A store over a folder (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MediaStore { root: root.into() }
    }

    /// The media folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks, thumbnails and stores a JPEG payload.
    ///
    /// [`Error::Refused`] for a bad payload (acknowledge and count it); any other error means the
    /// image is not stored (do not acknowledge).
    pub fn store_jpeg(&self, bytes: &[u8], limits: &ImageLimits) -> Result<StoredImage, Error> {
        let decoder = open_checked(bytes, limits)?;
        let sha256 = sha256_hex(bytes);
        let path = original_path(&sha256);
        let thumb_path = thumb_path(&sha256);
        let original_file = self.root.join(&path);
        let thumb_file = self.root.join(&thumb_path);

        if original_file.exists() && thumb_file.exists() {
            // Stored before, so it passed the full decode then; only the displayed size is needed.
            let (width, height) = displayed_dimensions(decoder)?;
            return Ok(StoredImage {
                sha256,
                bytes: bytes.len() as u64,
                width,
                height,
                path,
                thumb_path,
                newly_stored: false,
            });
        }

        let image = decode(decoder, limits)?;
        let thumb = thumbnail_jpeg(&image, limits)?;
        self.ensure_dirs(&sha256)?;
        // Thumbnail first: once the original exists, its thumbnail does too (unless deleted by
        // hand, which the existence check above also catches).
        write_atomically(&thumb_file, &thumb)?;
        let newly_stored = write_atomically(&original_file, bytes)?;
        Ok(StoredImage {
            sha256,
            bytes: bytes.len() as u64,
            width: image.width(),
            height: image.height(),
            path,
            thumb_path,
            newly_stored,
        })
    }

    /// The file of a stored relative path, or `None` when the path is not one this store makes
    /// (so a path from a request can never leave the media folder).
    pub fn resolve(&self, relative: &str) -> Option<PathBuf> {
        let name = relative.rsplit('/').next()?;
        let sha = name
            .strip_suffix(".thumb.jpg")
            .or_else(|| name.strip_suffix(".jpg"))?;
        let valid = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid && (relative == original_path(sha) || relative == thumb_path(sha)) {
            Some(self.root.join(relative))
        } else {
            None
        }
    }

    /// Creates `{media}/ab/cd` and makes each new folder's entry durable.
    fn ensure_dirs(&self, sha256: &str) -> Result<(), Error> {
        let mut dir = self.root.clone();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        for level in [&sha256[..2], &sha256[2..4]] {
            let child = dir.join(level);
            if !child.exists() {
                match fs::create_dir(&child) {
                    Ok(()) => sync_dir(&dir)?,
                    // Another writer made it meanwhile, and syncs it.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io("create folder", &child, e)),
                }
            }
            dir = child;
        }
        Ok(())
    }
}

fn displayed_dimensions(mut decoder: JpegDecoder<Cursor<&[u8]>>) -> Result<(u32, u32), Error> {
    let (w, h) = decoder.dimensions();
    let orientation = decoder.orientation().map_err(not_jpeg)?;
    use ::image::metadata::Orientation::*;
    Ok(match orientation {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (h, w),
        _ => (w, h),
    })
}

fn original_path(sha256: &str) -> String {
    format!("{}/{}/{sha256}.jpg", &sha256[..2], &sha256[2..4])
}

fn thumb_path(sha256: &str) -> String {
    format!("{}/{}/{sha256}.thumb.jpg", &sha256[..2], &sha256[2..4])
}

/// Writes `data` to `path` unless it exists: temporary file, fsync, rename, fsync of the folder.
/// Returns whether it wrote.
fn write_atomically(path: &Path, data: &[u8]) -> Result<bool, Error> {
    if path.exists() {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name(path));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        file.write_all(data)
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        drop(file);
        // Same content under the same name: if another writer renamed first, replacing it with
        // identical bytes is harmless.
        fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)?;
    Ok(true)
}

/// `.{name}.{pid}.{nanos}.{n}.tmp`: unique across threads, processes and hosts sharing a folder;
/// the leading dot and `.tmp` make leftovers of a crash easy to sweep.
fn temp_name(path: &Path) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.{}.{nanos}.{n}.tmp", std::process::id())
}

/// Makes a folder's entries (a new file name, a rename) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync folder", dir, e))?;
    }
    #[cfg(not(unix))]
    {
        // Folders cannot be opened for fsync here; renames are durable on NTFS's journal.
        let _ = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::{ImageBuffer, Rgb};

    /// A real JPEG of `w`×`h` with a gradient, so that decode and thumbnail have content.
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128])
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&DynamicImage::ImageRgb8(img))
            .unwrap();
        out
    }

    /// Patches the dimensions in the first SOF0/SOF2 segment.
    fn with_dimensions(mut jpeg: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
        let sof = jpeg
            .windows(2)
            .position(|m| m == [0xFF, 0xC0] || m == [0xFF, 0xC2])
            .unwrap();
        // FF C0, length (2), precision (1), height (2), width (2)
        jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        jpeg
    }

    #[test]
    fn a_jpeg_is_stored_once_with_a_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path().join("media"));
        let bytes = jpeg(800, 600);
        let limits = ImageLimits::default();

        let stored = store.store_jpeg(&bytes, &limits).unwrap();
        assert_eq!(stored.sha256, sha256_hex(&bytes));
        assert_eq!(stored.sha256.len(), 64);
        assert_eq!((stored.width, stored.height), (800, 600));
        assert_eq!(stored.bytes, bytes.len() as u64);
        assert!(stored.newly_stored);
        let sha = &stored.sha256;
        assert_eq!(
            stored.path,
            format!("{}/{}/{sha}.jpg", &sha[..2], &sha[2..4])
        );
        assert_eq!(
            stored.thumb_path,
            format!("{}/{}/{sha}.thumb.jpg", &sha[..2], &sha[2..4])
        );

        let original = store.resolve(&stored.path).unwrap();
        assert_eq!(
            fs::read(&original).unwrap(),
            bytes,
            "the original is kept byte for byte"
        );
        let thumb = ::image::load_from_memory(
            &fs::read(store.resolve(&stored.thumb_path).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 240));

        // Again: nothing rewritten, same answer.
        let mtime = fs::metadata(&original).unwrap().modified().unwrap();
        let again = store.store_jpeg(&bytes, &limits).unwrap();
        assert!(!again.newly_stored);
        assert_eq!(
            StoredImage {
                newly_stored: true,
                ..again
            },
            stored
        );
        assert_eq!(fs::metadata(&original).unwrap().modified().unwrap(), mtime);

        // No temporary files left behind.
        let leftovers: Vec<_> = fs::read_dir(original.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn small_and_tall_images_keep_their_shape() {
        let limits = ImageLimits::default();
        let small = check_jpeg(&jpeg(100, 50), &limits).unwrap();
        let thumb =
            ::image::load_from_memory(&thumbnail_jpeg(&small.image, &limits).unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (100, 50), "never enlarged");
        let tall = check_jpeg(&jpeg(300, 1200), &limits).unwrap();
        let thumb =
            ::image::load_from_memory(&thumbnail_jpeg(&tall.image, &limits).unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (80, 320));
    }

    #[test]
    fn refuses_what_is_not_a_whole_jpeg() {
        let limits = ImageLimits::default();
        let reason = |bytes: &[u8]| check_jpeg(bytes, &limits).unwrap_err().reason;

        assert_eq!(reason(b""), Reason::NotJpeg);
        assert_eq!(reason(b"\x89PNG\r\n\x1a\n0000"), Reason::NotJpeg);
        assert_eq!(reason(b"GIF89a"), Reason::NotJpeg);
        assert_eq!(reason(&[0xFF, 0xD8, 0xFF]), Reason::NotJpeg);

        let good = jpeg(64, 64);
        for cut in [good.len() / 2, good.len() - 2, 20] {
            assert_eq!(reason(&good[..cut]), Reason::NotJpeg, "cut at {cut}");
        }
        // Garbage after the header: not decodable.
        let mut garbage = good[..good.len() / 2].to_vec();
        garbage.resize(good.len(), 0x55);
        assert_eq!(reason(&garbage), Reason::NotJpeg);

        // Data appended after EOI is allowed (cameras do it).
        let mut trailer = good.clone();
        trailer.extend_from_slice(b"trailer");
        assert!(check_jpeg(&trailer, &limits).is_ok());
    }

    #[test]
    fn refuses_too_many_bytes_and_too_many_pixels_before_decoding() {
        let limits = ImageLimits {
            max_bytes: 1000,
            ..ImageLimits::default()
        };
        let big = jpeg(200, 200);
        assert!(big.len() > 1000);
        assert_eq!(
            check_jpeg(&big, &limits).unwrap_err().reason,
            Reason::ImageTooLarge
        );

        // A tiny file whose header claims 30,000 × 30,000: refused from the header; decoding it
        // would allocate 2.7 GB.
        let bomb = with_dimensions(jpeg(16, 16), 30_000, 30_000);
        assert!(bomb.len() < 2000);
        let err = check_jpeg(&bomb, &ImageLimits::default()).unwrap_err();
        assert_eq!(err.reason, Reason::ImageTooManyPixels, "{err}");
        assert!(err.detail.contains("30000×30000"), "{}", err.detail);

        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let err = store
            .store_jpeg(&bomb, &ImageLimits::default())
            .unwrap_err();
        assert_eq!(
            err.refusal().map(|r| r.reason),
            Some(Reason::ImageTooManyPixels)
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing stored"
        );

        let limits = ImageLimits {
            max_pixels: 100 * 100,
            ..ImageLimits::default()
        };
        assert!(check_jpeg(&jpeg(100, 100), &limits).is_ok());
        assert_eq!(
            check_jpeg(&jpeg(101, 100), &limits).unwrap_err().reason,
            Reason::ImageTooManyPixels
        );
    }

    #[test]
    fn resolve_only_accepts_paths_it_makes() {
        let store = MediaStore::new("/m");
        let sha = sha256_hex(b"x");
        let path = original_path(&sha);
        assert_eq!(store.resolve(&path), Some(PathBuf::from("/m").join(&path)));
        assert!(store.resolve(&thumb_path(&sha)).is_some());
        assert!(store.resolve(&format!("../{sha}.jpg")).is_none());
        assert!(store.resolve(&format!("ab/cd/{sha}.jpg")).is_none());
        assert!(store.resolve("../../etc/passwd").is_none());
        assert!(store.resolve(&path.to_uppercase()).is_none());
    }
}
