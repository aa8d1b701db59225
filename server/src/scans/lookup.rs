//! What a scanned URL or a typed short code stands for: the verdict a consumer is shown, the label, its
//! batch and what the scan log knows about it.
//!
//! A URL carries a signature, so it proves the label was issued (a copy of a genuine label is caught
//! by the scan analytics, not here). A typed short code carries only a check digit: it names a label
//! but proves nothing, so a short code that was never minted is simply unknown, not a leaked key.

use suyuan_core::model::{
    BatchStatus, LabelLookup, LabelRef, LabelScanStats, LabelState, ScanVerdict,
};
use suyuan_core::store::{labels, DbConnection};
use suyuan_core::CoreResult;
use suyuan_label_gen::{LabelSerial, Verdict};

use super::keys::KeyCache;

/// How the code was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// The label's URL (or its 169 digits): signature checked.
    Signed,
    /// The 13-digit short code printed under the QR: check digit only.
    Short,
}

/// Everything the page, the kiosk and the SMS answer need about one code.
#[derive(Debug, Clone)]
pub struct ScanFacts {
    pub verdict: ScanVerdict,
    pub kind: CodeKind,
    /// The serial the code names (authentic only for signed, genuine codes).
    pub serial: Option<LabelSerial>,
    pub lookup: Option<LabelLookup>,
    pub batch_status: Option<BatchStatus>,
    pub batch_reason: Option<String>,
    pub stats: Option<LabelScanStats>,
}

impl ScanFacts {
    /// The label as the database names it.
    pub fn label(&self) -> Option<LabelRef> {
        self.serial.map(label_ref)
    }

    /// The short code as printed.
    pub fn short_code(&self) -> Option<String> {
        self.serial.map(LabelSerial::grouped)
    }
}

/// The database's name for a serial.
pub fn label_ref(serial: LabelSerial) -> LabelRef {
    LabelRef {
        key_id: i64::from(serial.key_id().get()),
        sequence: i64::try_from(serial.sequence()).unwrap_or(i64::MAX),
    }
}

/// Resolves a code.
pub fn resolve(
    c: &mut DbConnection,
    keys: &KeyCache,
    code: &str,
    kind: CodeKind,
) -> CoreResult<ScanFacts> {
    let bare = |verdict, serial| ScanFacts {
        verdict,
        kind,
        serial,
        lookup: None,
        batch_status: None,
        batch_reason: None,
        stats: None,
    };
    let serial = match kind {
        CodeKind::Signed => {
            let keys_now = keys.get(c)?;
            let mut verdict = suyuan_label_gen::verify(code, &keys_now);
            if let Verdict::UnknownKey { .. } = verdict {
                // A key made by another replica a moment ago?
                if let Some(fresh) = keys.after_miss(c)? {
                    verdict = suyuan_label_gen::verify(code, &fresh);
                }
            }
            match verdict {
                Verdict::Genuine { serial, .. } => serial,
                Verdict::InvalidSignature { serial } => {
                    return Ok(bare(ScanVerdict::Counterfeit, Some(serial)))
                }
                Verdict::UnknownKey { serial, .. } => {
                    return Ok(bare(ScanVerdict::UnknownKey, Some(serial)))
                }
                Verdict::Malformed(_) => return Ok(bare(ScanVerdict::Malformed, None)),
            }
        }
        CodeKind::Short => {
            let digits: String = code
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            match LabelSerial::parse(&digits) {
                Ok(serial) => serial,
                Err(_) => return Ok(bare(ScanVerdict::Malformed, None)),
            }
        }
    };
    let found = labels::lookup_for_scan(c, label_ref(serial))?;
    if found.lookup.state == LabelState::NotMinted && kind == CodeKind::Short {
        return Ok(bare(ScanVerdict::Malformed, None));
    }
    Ok(ScanFacts {
        verdict: found.verdict(),
        kind,
        serial: Some(serial),
        batch_reason: found.batch_reason,
        lookup: Some(found.lookup),
        batch_status: found.batch_status,
        stats: found.stats,
    })
}
