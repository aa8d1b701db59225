//! What the gateway needs from the database, as a trait: the MQTT runtime is written and tested
//! against it, and the `suyuan` binary plugs in the real database (`CoreStore` in `server/src/iot/store.rs`).
//!
//! The contract that makes "nothing acknowledged is ever lost" hold:
//! - [`Store::write`] commits a whole batch in one transaction or nothing, and is idempotent
//!   (a [`Reading`] on (device, ts, seq), images on their hash, statuses on (device, time)),
//!   so a batch written twice after a crash or a redelivery stores each row once;
//! - rules are evaluated inside that same transaction on the rows it actually inserted, so an
//!   alert is never lost between a commit and an evaluation, and several replicas never raise the
//!   same alert twice;
//! - [`StoreError::Unavailable`] means "nothing was written, try again later": the runtime spools
//!   the messages and acknowledges them; [`StoreError::Rejected`] means the database refuses the
//!   data itself: the runtime refuses it (counts, acknowledges, never retries).

use crate::counters::{CounterSnapshot, RefusalEntry};
use crate::image::StoredImage;
use crate::reading::{DeviceStatus, Reading};
use crate::topic::{ClientId, SiteId};

/// What kind of device a client id is registered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Publishes telemetry.
    Sensor,
    /// Publishes JPEG images.
    Camera,
}

/// A registered device, as the gateway checks messages against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's row id.
    pub id: i64,
    /// Its MQTT client id (also the device segment of its topics).
    pub client_id: ClientId,
    /// The only site it may publish for.
    pub site: SiteId,
    pub kind: DeviceKind,
    /// Disabled devices are refused (`device_disabled`).
    pub enabled: bool,
}

/// One message that passed every check, ready to be written.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// When the gateway received it (gateway clock): decides whether its readings are late.
    pub received_at_ms: i64,
    pub device_id: i64,
    pub site: SiteId,
    pub what: AcceptedKind,
}

/// What an accepted message carries.
#[derive(Debug, Clone)]
pub enum AcceptedKind {
    /// Telemetry: the readings that were accepted, one per object of the payload (refused parts are
    /// counted, not stored).
    Telemetry(Vec<Reading>),
    /// A camera image, already stored in the media folder by content hash.
    Image {
        /// Capture time from the topic (device time).
        ts_ms: i64,
        image: StoredImage,
    },
    /// The device's retained status (`online` / `offline`, its last will).
    Status(DeviceStatus),
}

/// Why a write did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (or timed out); nothing was written. Spool and retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refuses the data itself (it would refuse it again); nothing was written.
    #[error("refused by the database: {0}")]
    Rejected(String),
}

/// The database, as the gateway sees it. Calls block; the runtime makes them from blocking threads.
pub trait Store: Send + Sync + 'static {
    /// The device registered under `client_id`, if any.
    fn device(&self, client_id: &ClientId) -> Result<Option<DeviceInfo>, StoreError>;

    /// Every registered device (the runtime caches them, so that it can check messages while the
    /// database is away).
    fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError>;

    /// Writes a batch in one transaction, idempotently, evaluating the rules on what it inserted.
    fn write(&self, batch: &[Accepted]) -> Result<(), StoreError>;

    /// Adds refusal counts (deltas since the last call) and the latest refused messages' summaries,
    /// so that the API shows the refusals of every replica.
    fn add_refusals(
        &self,
        counts: &CounterSnapshot,
        recent: &[RefusalEntry],
    ) -> Result<(), StoreError>;

    /// Evaluates the no-data rules at `now_ms` (called about once a minute by every replica;
    /// alerts are keyed so that replicas agree).
    fn tick(&self, now_ms: i64) -> Result<(), StoreError>;
}
