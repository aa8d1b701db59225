//! Records: capturing them (one, or an offline backlog), the hash chain they are appended to, and reading
//! them back. Every write is one transaction: the record is prepared and checked the same way on every
//! path (`prepare`), the write-time rules decide ([`crate::rules::records`]), and the chain moves.
//!
//! - `prepare`: access, stored forms, the same-record check and its 409, the row — shared by both paths;
//! - `refs`: the sites and images a record names, and whether its writer may name them;
//! - `capture`: one record, with its rules;
//! - `sync`: an offline phone's backlog, set-wise where the rules allow;
//! - `chain`: appending to the hash chains, one record or many;
//! - `read`: records by id and client id, histories and the corrected view.

mod capture;
mod chain;
mod prepare;
mod read;
mod refs;
mod sync;

pub use capture::{capture, capture_in};
pub(crate) use chain::{append, append_chained, lock_batches, HeadAdvance};
pub use read::{corrected, corrected_page, get, history, history_of_many, history_page};
pub(crate) use refs::References;
pub use sync::{sync, SyncError, SyncOutcome, MAX_SYNC_ITEMS};
