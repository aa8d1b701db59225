//! Scans: a consumer opening a label's page (or typing its short code, at a kiosk, by SMS), and what the
//! counterfeit rules make of the sequence of scans of one label.
//!
//! A scan stores no personal data in clear: the client is a salted hash of its network address, the
//! place a 6-digit division code (from an IP-to-region database, the built-in ip2region one or the
//! operator's, or the phone's location rounded to about 10 km).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::text_enum;
use super::LabelRef;
use crate::{BatchId, OrgId, ProductId};

text_enum!(
    /// How the code reached the platform.
    ScanMethod {
        /// A phone camera opened the label's URL.
        Qr = "qr",
        /// The short code typed on the lookup form.
        ShortCode = "short_code",
        /// The short code typed at a service-station kiosk.
        Kiosk = "kiosk",
        /// The short code sent by SMS.
        Sms = "sms",
        /// A GS1 Digital Link (GTIN and lot): the batch, not an individual label.
        DigitalLink = "digital_link",
    }
);

text_enum!(
    /// What the consumer was told.
    ScanVerdict {
        /// Genuine, bound to a batch on sale.
        Active = "active",
        /// Genuine, but the batch is on hold.
        OnHold = "on_hold",
        /// Genuine, the batch is recalled.
        Recalled = "recalled",
        /// Genuine, not yet bound to a batch.
        NotActivated = "not_activated",
        /// Genuine, voided.
        Void = "void",
        /// Validly signed but never minted: a leaked key or a print overrun.
        NotMinted = "not_minted",
        /// The signature does not match: a forgery attempt.
        Counterfeit = "counterfeit",
        /// Names a key the platform never had.
        UnknownKey = "unknown_key",
        /// Not a label code, or a short code that does not exist.
        Malformed = "malformed",
        /// A batch opened by GTIN and lot: not individually verified.
        Batch = "batch",
    }
);

text_enum!(
    /// Where a scan's region came from.
    RegionSource {
        /// The operator's IP-to-region database (`suyuan serve --ip-regions FILE`).
        Ip = "ip",
        /// ip2region's database built into the server, used when the operator installs none.
        Ip2region = "ip2region",
        /// The phone's location, shared by the consumer, rounded to about 10 km.
        Location = "location",
    }
);

text_enum!(
    /// Why a genuine label looks copied.
    Suspicion {
        /// Scanned from more distinct devices than one package plausibly meets.
        ManyDevices = "many_devices",
        /// Two scans further apart than anyone could travel in the time between them.
        ImpossibleTravel = "impossible_travel",
        /// Scanned outside the product's distribution area.
        OutsideArea = "outside_area",
    }
);

/// A scan's coarse place.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScanRegion {
    /// 行政区划代码 of the county (or city) the scan came from.
    pub division_code: String,
    pub source: RegionSource,
    /// The point used for distances: the division's centre, or the rounded phone location.
    pub latitude: f64,
    pub longitude: f64,
}

/// A scan to log.
#[derive(Debug, Clone)]
pub struct NewScan {
    pub scanned_at: DateTime<Utc>,
    pub method: ScanMethod,
    pub verdict: ScanVerdict,
    /// The label the code claims (also for invalid signatures); none for malformed codes and batches.
    pub label: Option<LabelRef>,
    /// The short code as printed, for alert messages.
    pub short_code: Option<String>,
    pub batch_id: Option<BatchId>,
    /// The label's owner (the organisation of its run).
    pub org_id: Option<OrgId>,
    /// The label's product (its distribution area is checked).
    pub product_id: Option<ProductId>,
    pub region: Option<ScanRegion>,
    /// Salted hash of the client's network address (IPv4 address or IPv6 /64).
    pub client_hash: String,
}

/// A phone's location shared after its scan: refines the region of that client's latest scan of the label
/// and is checked against the product's distribution area (the journey is checked at the next scan).
#[derive(Debug, Clone)]
pub struct LocatedScan {
    pub label: LabelRef,
    pub short_code: Option<String>,
    pub client_hash: String,
    pub region: ScanRegion,
    pub at: DateTime<Utc>,
    pub batch_id: Option<BatchId>,
    pub org_id: Option<OrgId>,
    pub product_id: Option<ProductId>,
}

/// What the scan log receives, in the order it happened.
#[derive(Debug, Clone)]
pub enum ScanEvent {
    Scan(NewScan),
    Located(LocatedScan),
}

/// The thresholds of the counterfeit rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRules {
    /// More distinct devices than this for one label opens `label_many_devices`.
    pub max_devices: u32,
    /// Two consecutive scans of one label implying a faster journey than this open
    /// `label_impossible_travel` …
    pub max_speed_kmh: f64,
    /// … when they are also further apart than this (regions are coarse: neighbours are not travel).
    pub min_travel_km: f64,
}

impl Default for ScanRules {
    fn default() -> Self {
        ScanRules {
            max_devices: 5,
            max_speed_kmh: 900.0,
            min_travel_km: 150.0,
        }
    }
}

/// What the scan log knows about one label, for its page.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LabelScanStats {
    pub label: LabelRef,
    pub scans: i64,
    /// Distinct clients.
    pub devices: i64,
    pub first_at: DateTime<Utc>,
    pub first_division: Option<String>,
    pub last_at: DateTime<Utc>,
    pub last_division: Option<String>,
    /// Set once a rule found the label suspicious.
    pub suspicion: Option<Suspicion>,
}

/// Scans of one day, region and verdict (the dashboard's regional comparison; forgery attempts by region).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RegionDayCount {
    /// YYYY-MM-DD, China time.
    pub day: String,
    /// Empty when the region is unknown.
    pub division_code: String,
    pub verdict: ScanVerdict,
    pub scans: i64,
}
