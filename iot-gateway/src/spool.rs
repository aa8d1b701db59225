//! The spool: a durable store-and-forward queue on the gateway's own disk, for the time the
//! database is unreachable.
//!
//! The gateway acknowledges a message to the broker only once it is safe. Normally that means
//! committed to the database; while the database is down, it means appended here: [`Spool::append`]
//! returns only after the record is fsynced, so an acknowledged message survives a crash or a
//! power cut. When the database is back, [`Spool::read_batch`] hands out the oldest records,
//! the caller commits them (idempotently), and [`Spool::confirm`] moves a durable cursor past
//! them. A crash between the commit and the confirmation re-delivers that batch after restart:
//! at-least-once, which the idempotent database writes turn into exactly-once rows.
//!
//! Arrival order is kept: records are read back in the order they were appended. While the spool
//! is not empty, new messages should be appended to it too (not written straight to the
//! database), so that a message never overtakes an older one.
//!
//! # Files
//!
//! ```text
//! {dir}/LOCK                       held (flock) by the one process using the folder
//! {dir}/cursor                     16 bytes: segment, offset (u64 LE) + CRC-32; replaced atomically
//! {dir}/seg-00000000000000000007   "SYSPOOL1" then records
//! ```
//!
//! A record is `len: u32 LE`, `crc: u32 LE` (CRC-32 of the four length bytes and the body), then
//! `len` body bytes, the body being a [`SpooledMessage`] in the binary form of
//! [`SpooledMessage::encode`]. Segments are appended to until the next record would pass
//! `segment_bytes`; a segment whose records are all confirmed is deleted, which is how disk space
//! comes back.
//!
//! # Crash safety
//!
//! On [`Spool::open`], every segment is read and checked record by record. A crash in the middle
//! of an append leaves a torn record at the end of the last segment: its length or checksum does
//! not match, and the segment is truncated there (that record was never acknowledged, because
//! `append` had not returned). The same check finding a bad record anywhere else means the disk
//! corrupted acknowledged data: the segment is cut there too — there is no way to find the next
//! record boundary — and the loss is logged as an error and counted in
//! [`SpoolStats::corrupt_bytes_dropped`].
//!
//! A failed write or fsync during `append` makes the spool refuse further appends until it is
//! reopened: after a failed fsync the file's contents are unknown, and appending after a partial
//! record would hide the records behind it.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::SpoolConfig;
use crate::error::Error;
use crate::image::sync_dir;

/// A message as received from the broker, kept until the database has it.
///
/// The topic says what the payload is (telemetry, image, status), so the whole pipeline can run
/// again on it when it is drained; `received_at_ms` is kept because it is when the gateway took
/// responsibility for the message (rules judge lateness by it, and the stored rows record it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledMessage {
    /// The MQTT topic.
    pub topic: String,
    /// The payload bytes as received (binary for images).
    pub payload: Vec<u8>,
    /// Gateway clock when the message arrived, ms since the epoch.
    pub received_at_ms: i64,
}

/// Version byte of [`SpooledMessage::encode`].
const MESSAGE_FORMAT: u8 = 1;

impl SpooledMessage {
    /// The binary body of a record: version `1`, `received_at_ms` (i64 LE), topic length (u16 LE),
    /// topic (UTF-8), payload length (u32 LE), payload.
    ///
    /// A format of our own rather than a serialisation library's: it is six fields, it must stay
    /// readable by every later version of the gateway (a spool can outlive an upgrade), and
    /// binary payloads stay as they are.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let topic_len = u16::try_from(self.topic.len()).map_err(|_| too_large(self.topic.len()))?;
        let payload_len =
            u32::try_from(self.payload.len()).map_err(|_| too_large(self.payload.len()))?;
        let mut out = Vec::with_capacity(1 + 8 + 2 + self.topic.len() + 4 + self.payload.len());
        out.push(MESSAGE_FORMAT);
        out.extend_from_slice(&self.received_at_ms.to_le_bytes());
        out.extend_from_slice(&topic_len.to_le_bytes());
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(&payload_len.to_le_bytes());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Reads a body written by [`encode`](Self::encode).
    pub fn decode(body: &[u8]) -> Result<Self, &'static str> {
        let mut r = body;
        let mut take = |n: usize| -> Result<&[u8], &'static str> {
            if r.len() < n {
                return Err("record body is shorter than its fields");
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(1)? != [MESSAGE_FORMAT] {
            return Err("unknown record format version");
        }
        let received_at_ms = i64::from_le_bytes(take(8)?.try_into().map_err(|_| "short")?);
        let topic_len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| "short")?);
        let topic = std::str::from_utf8(take(usize::from(topic_len))?)
            .map_err(|_| "topic is not UTF-8")?
            .to_owned();
        let payload_len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "short")?);
        let payload = take(payload_len as usize)?.to_vec();
        if !r.is_empty() {
            return Err("record body is longer than its fields");
        }
        Ok(SpooledMessage {
            topic,
            payload,
            received_at_ms,
        })
    }
}

fn too_large(size: usize) -> Error {
    Error::RecordTooLarge {
        size: size as u64,
        max: u64::from(u32::MAX),
    }
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SpoolPosition {
    /// Segment number.
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

impl fmt::Display for SpoolPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// The oldest unconfirmed messages, handed out by [`Spool::read_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolBatch {
    /// The messages, oldest first.
    pub messages: Vec<SpooledMessage>,
    /// Where the batch starts (the cursor when it was read).
    pub start: SpoolPosition,
    /// Just after its last record.
    pub end: SpoolPosition,
}

/// Figures for the operator and the "nearly full" alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolStats {
    /// Messages not yet confirmed.
    pub pending: u64,
    /// Bytes the segment files take.
    pub disk_bytes: u64,
    /// The configured bound.
    pub max_bytes: u64,
    /// `disk_bytes / max_bytes`.
    pub fill_ratio: f64,
    /// Whether `fill_ratio` is at or past the alert ratio.
    pub nearly_full: bool,
    /// Segment files on disk.
    pub segments: usize,
    /// Bytes of a torn last record cut at open (a crash during an append; never acknowledged).
    pub torn_bytes_dropped: u64,
    /// Bytes of damaged records cut at open elsewhere (acknowledged data lost to disk corruption).
    pub corrupt_bytes_dropped: u64,
}

/// Why draining stopped.
#[derive(Debug, thiserror::Error)]
pub enum DrainError<E> {
    /// The spool could not be read or the cursor not written.
    #[error(transparent)]
    Spool(#[from] Error),
    /// The commit callback failed (the database is still unreachable): the batch stays spooled.
    #[error("commit failed: {0}")]
    Commit(E),
}

const SEGMENT_MAGIC: &[u8; 8] = b"SYSPOOL1";
const HEADER_LEN: u64 = SEGMENT_MAGIC.len() as u64;
const RECORD_HEADER_LEN: u64 = 8;
const CURSOR_FILE: &str = "cursor";
const LOCK_FILE: &str = "LOCK";
const SEGMENT_PREFIX: &str = "seg-";

/// Records encoded for one segment, written with one `write` and one fsync.
#[derive(Default)]
struct Frame {
    bytes: Vec<u8>,
    records: u64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    number: u64,
    /// Bytes of header and whole, fsynced records.
    len: u64,
}

/// The spool over one folder. One process per folder (enforced with a lock); within a process,
/// put it behind a mutex and do not hold the lock while committing a batch.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    _lock: File,
    segments: VecDeque<Segment>,
    /// Append handle of the last segment, opened on first use.
    active: Option<File>,
    cursor: SpoolPosition,
    next_segment: u64,
    pending: u64,
    disk_bytes: u64,
    broken: bool,
    torn_bytes_dropped: u64,
    corrupt_bytes_dropped: u64,
}

impl Spool {
    /// Opens (or creates) the spool folder, locks it, and recovers from a crash: drained
    /// segments are deleted, torn tails truncated, the unconfirmed messages counted.
    pub fn open(config: &SpoolConfig) -> Result<Spool, Error> {
        let dir = &config.dir;
        fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::SpoolLocked(dir.clone())),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", &lock_path, e)),
        }
        let _ = fs::remove_file(dir.join(format!("{CURSOR_FILE}.tmp")));

        let stored_cursor = read_cursor(dir)?;
        let mut numbers = list_segments(dir)?;
        numbers.sort_unstable();

        let mut spool = Spool {
            config: config.clone(),
            _lock: lock,
            segments: VecDeque::new(),
            active: None,
            cursor: SpoolPosition {
                segment: 0,
                offset: HEADER_LEN,
            },
            next_segment: 0,
            pending: 0,
            disk_bytes: 0,
            broken: false,
            torn_bytes_dropped: 0,
            corrupt_bytes_dropped: 0,
        };

        // Segments before the cursor's were confirmed; a crash came between writing the cursor
        // and deleting them.
        let mut deleted = false;
        if let Some(c) = stored_cursor {
            for &n in numbers.iter().filter(|&&n| n < c.segment) {
                let path = spool.segment_path(n);
                fs::remove_file(&path).map_err(|e| Error::io("delete", &path, e))?;
                deleted = true;
            }
            numbers.retain(|&n| n >= c.segment);
        }
        if deleted {
            sync_dir(dir)?;
        }

        let last = numbers.last().copied();
        for &n in &numbers {
            let is_last = Some(n) == last;
            let len = spool.recover_segment(n, is_last)?;
            spool.segments.push_back(Segment { number: n, len });
            spool.disk_bytes += len;
        }

        spool.cursor = match (stored_cursor, spool.segments.front()) {
            (Some(c), Some(first)) if c.segment == first.number => SpoolPosition {
                segment: c.segment,
                offset: c.offset.clamp(HEADER_LEN, first.len),
            },
            (_, Some(first)) => SpoolPosition {
                segment: first.number,
                offset: HEADER_LEN,
            },
            (Some(c), None) => SpoolPosition {
                segment: c.segment,
                offset: HEADER_LEN,
            },
            (None, None) => spool.cursor,
        };
        spool.next_segment = match spool.segments.back() {
            Some(s) => s.number + 1,
            None => spool.cursor.segment,
        };
        spool.pending = spool.count_from_cursor()?;
        Ok(spool)
    }

    /// Appends one message and makes it durable. When this returns `Ok`, the message may be
    /// acknowledged to the broker.
    pub fn append(&mut self, message: &SpooledMessage) -> Result<SpoolPosition, Error> {
        self.append_batch(std::slice::from_ref(message))
    }

    /// Appends several messages with one fsync (group commit); all of them are durable when it
    /// returns `Ok`, none is acknowledged-safe when it returns `Err`. Returns the position after
    /// the last one.
    pub fn append_batch(&mut self, messages: &[SpooledMessage]) -> Result<SpoolPosition, Error> {
        if self.broken {
            return Err(Error::io(
                "append to",
                &self.config.dir,
                std::io::Error::other("an earlier write failed; reopen the spool"),
            ));
        }
        let bodies = messages
            .iter()
            .map(SpooledMessage::encode)
            .collect::<Result<Vec<_>, _>>()?;
        let max_record = self.config.segment_bytes.saturating_sub(HEADER_LEN);
        let mut needed = 0;
        for body in &bodies {
            let size = RECORD_HEADER_LEN + body.len() as u64;
            if size > max_record {
                return Err(Error::RecordTooLarge {
                    size,
                    max: max_record,
                });
            }
            needed += size;
        }
        // Room for one new segment header is reserved when a roll is possible.
        let worst = needed + HEADER_LEN * (1 + needed / max_record.max(1));
        if self.disk_bytes + worst > self.config.max_bytes {
            return Err(Error::SpoolFull {
                used: self.disk_bytes,
                max: self.config.max_bytes,
                needed: worst,
            });
        }

        let result = self.write_records(&bodies);
        if result.is_err() {
            self.broken = true;
            self.active = None;
        }
        result
    }

    fn write_records(&mut self, bodies: &[Vec<u8>]) -> Result<SpoolPosition, Error> {
        let mut frame = Frame::default();
        for body in bodies {
            let size = RECORD_HEADER_LEN + body.len() as u64;
            let needs_new = match self.segments.back() {
                None => true,
                Some(s) => {
                    let len = s.len + frame.bytes.len() as u64;
                    len > HEADER_LEN && len + size > self.config.segment_bytes
                }
            };
            if needs_new {
                self.flush_frame(&mut frame)?;
                self.roll()?;
            }
            let len = body.len() as u32; // bounded by segment_bytes < 4 GiB
            let mut crc = crc32fast::Hasher::new();
            crc.update(&len.to_le_bytes());
            crc.update(body);
            frame.bytes.extend_from_slice(&len.to_le_bytes());
            frame.bytes.extend_from_slice(&crc.finalize().to_le_bytes());
            frame.bytes.extend_from_slice(body);
            frame.records += 1;
        }
        self.flush_frame(&mut frame)?;
        Ok(self.head())
    }

    /// Writes the buffered records to the active segment, fsyncs it, and only then counts them.
    fn flush_frame(&mut self, frame: &mut Frame) -> Result<(), Error> {
        if frame.records == 0 {
            return Ok(());
        }
        let Some(segment) = self.segments.back().copied() else {
            return Ok(());
        };
        let path = self.segment_path(segment.number);
        let file = match &mut self.active {
            Some(file) => file,
            slot @ None => slot.insert(
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io("open", &path, e))?,
            ),
        };
        file.write_all(&frame.bytes)
            .map_err(|e| Error::io("write", &path, e))?;
        file.sync_data().map_err(|e| Error::io("fsync", &path, e))?;
        let written = frame.bytes.len() as u64;
        if let Some(s) = self.segments.back_mut() {
            s.len += written;
        }
        self.disk_bytes += written;
        self.pending += frame.records;
        *frame = Frame::default();
        Ok(())
    }

    /// Starts a new segment: created with its header, fsynced, folder fsynced.
    fn roll(&mut self) -> Result<(), Error> {
        let number = self.next_segment;
        let path = self.segment_path(number);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        file.write_all(SEGMENT_MAGIC)
            .map_err(|e| Error::io("write", &path, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
        sync_dir(&self.config.dir)?;
        // Opened for writing without append: position is after the header already.
        self.active = Some(file);
        if self.segments.is_empty() {
            self.cursor = SpoolPosition {
                segment: number,
                offset: HEADER_LEN,
            };
        }
        self.segments.push_back(Segment {
            number,
            len: HEADER_LEN,
        });
        self.disk_bytes += HEADER_LEN;
        self.next_segment = number + 1;
        Ok(())
    }

    /// The oldest unconfirmed messages: up to `max_messages`, and stopping once `max_bytes` of
    /// bodies are read (at least one message when any is pending). Reading does not move the
    /// cursor: reading again without [`confirm`](Self::confirm) returns the same batch.
    pub fn read_batch(&self, max_messages: usize, max_bytes: u64) -> Result<SpoolBatch, Error> {
        let start = self.cursor;
        let mut messages = Vec::new();
        let mut pos = start;
        let mut bytes = 0;
        'segments: for segment in self.segments.iter().filter(|s| s.number >= start.segment) {
            let offset = if segment.number == start.segment {
                start.offset
            } else {
                HEADER_LEN
            };
            if offset >= segment.len {
                pos = SpoolPosition {
                    segment: segment.number,
                    offset: segment.len,
                };
                continue;
            }
            let path = self.segment_path(segment.number);
            let mut file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("seek", &path, e))?;
            let mut reader = BufReader::new(file.take(segment.len - offset));
            let mut at = offset;
            while at < segment.len {
                if messages.len() >= max_messages || (bytes >= max_bytes && !messages.is_empty()) {
                    break 'segments;
                }
                let body = match read_record(&mut reader, segment.len - at) {
                    Ok(Some(body)) => body,
                    Ok(None) | Err(_) => {
                        return Err(Error::SpoolCorrupt {
                            path,
                            offset: at,
                            problem: "record does not match its checksum (changed since open)",
                        })
                    }
                };
                let message =
                    SpooledMessage::decode(&body).map_err(|problem| Error::SpoolCorrupt {
                        path: path.clone(),
                        offset: at,
                        problem,
                    })?;
                at += RECORD_HEADER_LEN + body.len() as u64;
                bytes += body.len() as u64;
                messages.push(message);
                pos = SpoolPosition {
                    segment: segment.number,
                    offset: at,
                };
            }
        }
        Ok(SpoolBatch {
            messages,
            start,
            end: pos,
        })
    }

    /// Marks a batch as committed: the cursor moves past it durably, and segments left behind
    /// are deleted. Call only after the database commit of every message in the batch.
    pub fn confirm(&mut self, batch: &SpoolBatch) -> Result<(), Error> {
        if batch.messages.is_empty() {
            return Ok(());
        }
        if batch.start != self.cursor || batch.end <= batch.start || batch.end > self.head() {
            return Err(Error::BadSpoolPosition(format!(
                "batch {}..{} does not start at the cursor {}",
                batch.start, batch.end, self.cursor
            )));
        }
        let mut cursor = batch.end;
        if cursor == self.head() {
            // Everything is confirmed: the next segment starts afresh, and all files go.
            cursor = SpoolPosition {
                segment: self.next_segment,
                offset: HEADER_LEN,
            };
        } else if let Some(next) = self.segment_after_end_of(cursor) {
            // At the end of a full segment: point at the next one so this one can go.
            cursor = SpoolPosition {
                segment: next,
                offset: HEADER_LEN,
            };
        }
        write_cursor(&self.config.dir, cursor)?;
        self.cursor = cursor;
        self.pending = self.pending.saturating_sub(batch.messages.len() as u64);

        let mut deleted = false;
        while let Some(first) = self.segments.front().copied() {
            if first.number >= cursor.segment {
                break;
            }
            if self.segments.len() == 1 {
                self.active = None;
            }
            let path = self.segment_path(first.number);
            fs::remove_file(&path).map_err(|e| Error::io("delete", &path, e))?;
            self.segments.pop_front();
            self.disk_bytes -= first.len;
            deleted = true;
        }
        if deleted {
            sync_dir(&self.config.dir)?;
        }
        Ok(())
    }

    /// Drains the whole spool: reads batches of up to `max_batch` messages, hands each to
    /// `commit` (which writes them to the database in one transaction), and confirms it. Stops at
    /// the first failed commit, leaving that batch spooled. Returns the number of messages
    /// drained.
    pub fn drain<E>(
        &mut self,
        max_batch: usize,
        mut commit: impl FnMut(&[SpooledMessage]) -> Result<(), E>,
    ) -> Result<u64, DrainError<E>> {
        let mut drained = 0;
        loop {
            let batch = self.read_batch(max_batch.max(1), 8 * 1024 * 1024)?;
            if batch.messages.is_empty() {
                return Ok(drained);
            }
            commit(&batch.messages).map_err(DrainError::Commit)?;
            self.confirm(&batch)?;
            drained += batch.messages.len() as u64;
        }
    }

    /// Whether every message has been confirmed.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Messages not yet confirmed.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Bytes the segment files take.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// How full the spool is, 0 to 1 (for the "nearly full" alert).
    pub fn fill_ratio(&self) -> f64 {
        self.disk_bytes as f64 / self.config.max_bytes as f64
    }

    /// Figures for the operator.
    pub fn stats(&self) -> SpoolStats {
        let fill_ratio = self.fill_ratio();
        SpoolStats {
            pending: self.pending,
            disk_bytes: self.disk_bytes,
            max_bytes: self.config.max_bytes,
            fill_ratio,
            nearly_full: fill_ratio >= self.config.alert_ratio,
            segments: self.segments.len(),
            torn_bytes_dropped: self.torn_bytes_dropped,
            corrupt_bytes_dropped: self.corrupt_bytes_dropped,
        }
    }

    /// The number of the segment after `pos`'s, when `pos` is at the end of its segment.
    fn segment_after_end_of(&self, pos: SpoolPosition) -> Option<u64> {
        let mut iter = self.segments.iter().skip_while(|s| s.number != pos.segment);
        let current = iter.next()?;
        let next = iter.next()?;
        (pos.offset >= current.len).then_some(next.number)
    }

    /// Position just after the last durable record.
    fn head(&self) -> SpoolPosition {
        match self.segments.back() {
            Some(s) => SpoolPosition {
                segment: s.number,
                offset: s.len,
            },
            None => self.cursor,
        }
    }

    fn segment_path(&self, number: u64) -> PathBuf {
        self.config
            .dir
            .join(format!("{SEGMENT_PREFIX}{number:020}"))
    }

    /// Checks a segment record by record and truncates it after the last good one. Returns its
    /// length.
    fn recover_segment(&mut self, number: u64, is_last: bool) -> Result<u64, Error> {
        let path = self.segment_path(number);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();

        let mut magic = [0; HEADER_LEN as usize];
        let header_ok = file_len >= HEADER_LEN
            && file.read_exact(&mut magic).is_ok()
            && &magic == SEGMENT_MAGIC;
        if !header_ok {
            if is_last && file_len < HEADER_LEN {
                // Torn at creation: nothing was ever appended.
                file.set_len(0)
                    .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
                    .and_then(|()| file.write_all(SEGMENT_MAGIC))
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io("repair", &path, e))?;
                return Ok(HEADER_LEN);
            }
            return Err(Error::SpoolCorrupt {
                path,
                offset: 0,
                problem: "not a spool segment (bad header); move it away to start",
            });
        }

        let mut reader = BufReader::new(&mut file);
        let mut good = HEADER_LEN;
        while good < file_len {
            match read_record(&mut reader, file_len - good) {
                Ok(Some(body)) if SpooledMessage::decode(&body).is_ok() => {
                    good += RECORD_HEADER_LEN + body.len() as u64;
                }
                _ => break,
            }
        }
        drop(reader);
        if good < file_len {
            let dropped = file_len - good;
            if is_last {
                tracing::warn!(
                    segment = %path.display(),
                    offset = good,
                    bytes = dropped,
                    "spool: truncating a torn record left by a crash during an append"
                );
                self.torn_bytes_dropped += dropped;
            } else {
                tracing::error!(
                    segment = %path.display(),
                    offset = good,
                    bytes = dropped,
                    "spool: damaged record in a full segment; the rest of the segment is lost"
                );
                self.corrupt_bytes_dropped += dropped;
            }
            file.set_len(good)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io("truncate", &path, e))?;
        }
        Ok(good)
    }

    /// Counts the records from the cursor on (at open).
    fn count_from_cursor(&self) -> Result<u64, Error> {
        let mut count = 0;
        for segment in self
            .segments
            .iter()
            .filter(|s| s.number >= self.cursor.segment)
        {
            let offset = if segment.number == self.cursor.segment {
                self.cursor.offset
            } else {
                HEADER_LEN
            };
            if offset >= segment.len {
                continue;
            }
            let path = self.segment_path(segment.number);
            let mut file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("seek", &path, e))?;
            let mut reader = BufReader::new(file);
            let mut at = offset;
            while at < segment.len {
                let mut header = [0; RECORD_HEADER_LEN as usize];
                reader
                    .read_exact(&mut header)
                    .map_err(|e| Error::io("read", &path, e))?;
                let len = u64::from(u32::from_le_bytes([
                    header[0], header[1], header[2], header[3],
                ]));
                reader
                    .seek_relative(len as i64)
                    .map_err(|e| Error::io("seek", &path, e))?;
                at += RECORD_HEADER_LEN + len;
                count += 1;
            }
        }
        Ok(count)
    }
}

/// Reads one record of at most `remaining` bytes. `Ok(None)` when it is torn or damaged.
fn read_record(reader: &mut impl Read, remaining: u64) -> std::io::Result<Option<Vec<u8>>> {
    if remaining < RECORD_HEADER_LEN {
        return Ok(None);
    }
    let mut header = [0; RECORD_HEADER_LEN as usize];
    reader.read_exact(&mut header)?;
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_bytes);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    // A zero length is what a zero-filled tail (a crash on some filesystems) looks like.
    if len == 0 || u64::from(len) > remaining - RECORD_HEADER_LEN {
        return Ok(None);
    }
    let mut body = vec![0; len as usize];
    reader.read_exact(&mut body)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(&body);
    if hasher.finalize() != crc {
        return Ok(None);
    }
    Ok(Some(body))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, Error> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_prefix(SEGMENT_PREFIX)
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
        {
            numbers.push(n);
        }
    }
    Ok(numbers)
}

fn read_cursor(dir: &Path) -> Result<Option<SpoolPosition>, Error> {
    let path = dir.join(CURSOR_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let corrupt = || Error::SpoolCorrupt {
        path: path.clone(),
        offset: 0,
        problem: "cursor file is damaged",
    };
    let data: [u8; 20] = bytes.as_slice().try_into().map_err(|_| corrupt())?;
    let crc = u32::from_le_bytes([data[16], data[17], data[18], data[19]]);
    if crc32fast::hash(&data[..16]) != crc {
        return Err(corrupt());
    }
    let mut segment = [0; 8];
    segment.copy_from_slice(&data[..8]);
    let mut offset = [0; 8];
    offset.copy_from_slice(&data[8..16]);
    Ok(Some(SpoolPosition {
        segment: u64::from_le_bytes(segment),
        offset: u64::from_le_bytes(offset),
    }))
}

/// Replaces the cursor file atomically: temporary file, fsync, rename, folder fsync.
fn write_cursor(dir: &Path, cursor: SpoolPosition) -> Result<(), Error> {
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&cursor.segment.to_le_bytes());
    data.extend_from_slice(&cursor.offset.to_le_bytes());
    data.extend_from_slice(&crc32fast::hash(&data).to_le_bytes());
    let tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
    let path = dir.join(CURSOR_FILE);
    let mut file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(&data)
        .map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            max_bytes: 1024 * 1024,
            segment_bytes: 4096,
            alert_ratio: 0.8,
        }
    }

    fn msg(i: u32) -> SpooledMessage {
        SpooledMessage {
            topic: format!("suyuan/v1/1/dev-{i}/telemetry"),
            payload: format!(
                r#"{{"ts": {}, "values": {{"temp_c": {i}}}}}"#,
                1_750_000_000_000u64 + u64::from(i)
            )
            .into_bytes(),
            received_at_ms: 1_750_000_000_000 + i64::from(i),
        }
    }

    fn drain_all(spool: &mut Spool) -> Vec<SpooledMessage> {
        let mut out = Vec::new();
        spool
            .drain(7, |batch| {
                out.extend_from_slice(batch);
                Ok::<_, ()>(())
            })
            .unwrap();
        out
    }

    fn last_segment(dir: &Path) -> PathBuf {
        let mut n = list_segments(dir).unwrap();
        n.sort_unstable();
        dir.join(format!("{SEGMENT_PREFIX}{:020}", n.last().unwrap()))
    }

    #[test]
    fn messages_round_trip_through_the_binary_form() {
        let m = SpooledMessage {
            topic: "suyuan/v1/1/cam/image/jpeg/1750000000000".into(),
            payload: vec![0xFF, 0xD8, 0, 1, 2, 0xFF],
            received_at_ms: -5,
        };
        assert_eq!(SpooledMessage::decode(&m.encode().unwrap()).unwrap(), m);
        let mut body = m.encode().unwrap();
        body.push(0);
        assert!(SpooledMessage::decode(&body).is_err());
        assert!(SpooledMessage::decode(&body[..5]).is_err());
    }

    #[test]
    fn appends_drain_in_order_across_segments_and_space_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&config(dir.path())).unwrap();
        assert!(spool.is_empty());
        let sent: Vec<_> = (0..200).map(msg).collect();
        for m in &sent[..100] {
            spool.append(m).unwrap();
        }
        spool.append_batch(&sent[100..]).unwrap();
        assert_eq!(spool.pending(), 200);
        let stats = spool.stats();
        assert!(stats.segments > 3, "{stats:?}");
        assert!(stats.disk_bytes > 0);

        assert_eq!(drain_all(&mut spool), sent);
        assert!(spool.is_empty());
        assert_eq!(spool.disk_bytes(), 0);
        assert_eq!(list_segments(dir.path()).unwrap(), Vec::<u64>::new());

        // And it keeps working after being emptied, and after a reopen.
        spool.append(&msg(1000)).unwrap();
        drop(spool);
        let mut spool = Spool::open(&config(dir.path())).unwrap();
        assert_eq!(spool.pending(), 1);
        assert_eq!(drain_all(&mut spool), [msg(1000)]);
    }

    #[test]
    fn reopening_redelivers_what_was_not_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let sent: Vec<_> = (0..50).map(msg).collect();
        {
            let mut spool = Spool::open(&config(dir.path())).unwrap();
            spool.append_batch(&sent).unwrap();
            // Commit and confirm 20.
            let first = spool.read_batch(20, u64::MAX).unwrap();
            assert_eq!(first.messages, sent[..20]);
            spool.confirm(&first).unwrap();
            // Read 15 more and "commit" them, then crash before confirming.
            let second = spool.read_batch(15, u64::MAX).unwrap();
            assert_eq!(second.messages, sent[20..35]);
            assert_eq!(
                spool.read_batch(15, u64::MAX).unwrap(),
                second,
                "reading is repeatable"
            );
        }
        let mut spool = Spool::open(&config(dir.path())).unwrap();
        assert_eq!(spool.pending(), 30);
        assert_eq!(
            drain_all(&mut spool),
            sent[20..],
            "the unconfirmed 15 come again, in order"
        );
    }

    #[test]
    fn a_failed_commit_keeps_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&config(dir.path())).unwrap();
        for i in 0..10 {
            spool.append(&msg(i)).unwrap();
        }
        let mut calls = 0;
        let err = spool
            .drain(4, |batch| {
                calls += 1;
                if calls == 2 {
                    Err("database unreachable")
                } else {
                    assert_eq!(batch.len(), 4);
                    Ok(())
                }
            })
            .unwrap_err();
        assert!(matches!(err, DrainError::Commit("database unreachable")));
        assert_eq!(spool.pending(), 6);
        let rest = drain_all(&mut spool);
        assert_eq!(rest, (4..10).map(msg).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_is_truncated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(&config(dir.path())).unwrap();
            for i in 0..3 {
                spool.append(&msg(i)).unwrap();
            }
        }
        let seg = last_segment(dir.path());
        let good_len = fs::metadata(&seg).unwrap().len();
        // A crash in the middle of the fourth append: header and half a body.
        let body = msg(3).encode().unwrap();
        let mut torn = (body.len() as u32).to_le_bytes().to_vec();
        torn.extend_from_slice(&[1, 2, 3, 4]);
        torn.extend_from_slice(&body[..body.len() / 2]);
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&torn)
            .unwrap();

        let mut spool = Spool::open(&config(dir.path())).unwrap();
        assert_eq!(spool.pending(), 3);
        assert_eq!(spool.stats().torn_bytes_dropped, torn.len() as u64);
        assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
        // Appending after the repair puts the record where the torn one was.
        spool.append(&msg(4)).unwrap();
        assert_eq!(drain_all(&mut spool), [msg(0), msg(1), msg(2), msg(4)]);
    }

    #[test]
    fn a_whole_record_with_a_bad_checksum_and_a_zero_filled_tail_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(&config(dir.path())).unwrap();
            spool.append(&msg(0)).unwrap();
            spool.append(&msg(1)).unwrap();
        }
        let seg = last_segment(dir.path());
        let mut bytes = fs::read(&seg).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40; // flip a bit in the last record's body
        bytes.extend_from_slice(&[0; 100]);
        fs::write(&seg, &bytes).unwrap();

        let mut spool = Spool::open(&config(dir.path())).unwrap();
        assert_eq!(spool.pending(), 1);
        assert_eq!(drain_all(&mut spool), [msg(0)]);
    }

    #[test]
    fn the_bound_refuses_appends_and_draining_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig {
            max_bytes: 8192,
            ..config(dir.path())
        };
        let mut spool = Spool::open(&cfg).unwrap();
        let mut n = 0;
        let err = loop {
            match spool.append(&msg(n)) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::SpoolFull { max: 8192, .. }), "{err}");
        assert!(n > 50, "{n}");
        assert!(spool.disk_bytes() <= 8192);
        let stats = spool.stats();
        assert!(stats.nearly_full && stats.fill_ratio > 0.8, "{stats:?}");
        assert_eq!(spool.pending(), u64::from(n));

        assert_eq!(drain_all(&mut spool).len(), n as usize);
        assert!(!spool.stats().nearly_full);
        spool.append(&msg(9999)).unwrap();

        let huge = SpooledMessage {
            topic: "t".into(),
            payload: vec![0; 5000],
            received_at_ms: 0,
        };
        assert!(matches!(
            spool.append(&huge),
            Err(Error::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn one_process_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        let _spool = Spool::open(&config(dir.path())).unwrap();
        assert!(matches!(
            Spool::open(&config(dir.path())),
            Err(Error::SpoolLocked(_))
        ));
    }

    #[test]
    fn a_crash_after_the_cursor_but_before_deleting_segments_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let sent: Vec<_> = (0..100).map(msg).collect();
        {
            let mut spool = Spool::open(&config(dir.path())).unwrap();
            spool.append_batch(&sent).unwrap();
        }
        // Keep a copy of the first segment, drain half, and put the copy back as if the delete
        // had not happened.
        let mut numbers = list_segments(dir.path()).unwrap();
        numbers.sort_unstable();
        let first = dir
            .path()
            .join(format!("{SEGMENT_PREFIX}{:020}", numbers[0]));
        let copy = fs::read(&first).unwrap();
        {
            let mut spool = Spool::open(&config(dir.path())).unwrap();
            let batch = spool.read_batch(60, u64::MAX).unwrap();
            spool.confirm(&batch).unwrap();
        }
        assert!(!first.exists());
        fs::write(&first, copy).unwrap();
        let mut spool = Spool::open(&config(dir.path())).unwrap();
        assert!(!first.exists(), "a drained segment is deleted at open");
        assert_eq!(drain_all(&mut spool), sent[60..]);
    }

    #[test]
    fn damage_in_an_older_segment_loses_only_that_segment_rest_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let sent: Vec<_> = (0..100).map(msg).collect();
        {
            let mut spool = Spool::open(&config(dir.path())).unwrap();
            spool.append_batch(&sent).unwrap();
        }
        let mut numbers = list_segments(dir.path()).unwrap();
        numbers.sort_unstable();
        assert!(numbers.len() >= 3);
        let first = dir
            .path()
            .join(format!("{SEGMENT_PREFIX}{:020}", numbers[0]));
        let mut bytes = fs::read(&first).unwrap();
        bytes[HEADER_LEN as usize + 20] ^= 0xFF; // inside the first record's body
        fs::write(&first, &bytes).unwrap();

        let mut spool = Spool::open(&config(dir.path())).unwrap();
        let stats = spool.stats();
        assert!(stats.corrupt_bytes_dropped > 0, "{stats:?}");
        assert_eq!(stats.torn_bytes_dropped, 0);
        let rest = drain_all(&mut spool);
        // The first segment's records are lost; everything in the later ones is there, in order.
        assert!(rest.len() < 100 && rest.len() > 30, "{}", rest.len());
        assert_eq!(rest, sent[100 - rest.len()..]);
    }

    #[test]
    fn a_confirmation_must_match_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&config(dir.path())).unwrap();
        for i in 0..5 {
            spool.append(&msg(i)).unwrap();
        }
        let batch = spool.read_batch(2, u64::MAX).unwrap();
        spool.confirm(&batch).unwrap();
        assert!(matches!(
            spool.confirm(&batch),
            Err(Error::BadSpoolPosition(_))
        ));
        assert_eq!(spool.pending(), 3);
    }
}
