//! The label verifying keys, kept in memory.
//!
//! Every scan checks a signature; reading and parsing the keys table for each of 5,000 scans a second
//! would cost more than the check. The set is reloaded after [`KEYS_TTL`] (another replica may have
//! rotated the key) and at once, at most once a second, when a code names a key id the set lacks.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use suyuan_core::store::{labels, DbConnection};
use suyuan_core::CoreResult;
use suyuan_label_gen::VerifyingKeySet;

/// How long a loaded key set is trusted before it is read again.
pub const KEYS_TTL: Duration = Duration::from_secs(30);
/// The shortest time between two reloads caused by an unknown key id.
const MISS_RELOAD: Duration = Duration::from_secs(1);

/// The cached key set.
#[derive(Debug, Default)]
pub struct KeyCache {
    loaded: RwLock<Option<(Instant, Arc<VerifyingKeySet>)>>,
}

impl KeyCache {
    /// The current set, reloaded when stale.
    pub fn get(&self, c: &mut DbConnection) -> CoreResult<Arc<VerifyingKeySet>> {
        if let Some((at, keys)) = self.current() {
            if at.elapsed() < KEYS_TTL {
                return Ok(keys);
            }
        }
        self.reload(c)
    }

    /// A fresh set after a code named an unknown key, unless the set was loaded within the last second.
    pub fn after_miss(&self, c: &mut DbConnection) -> CoreResult<Option<Arc<VerifyingKeySet>>> {
        match self.current() {
            Some((at, _)) if at.elapsed() < MISS_RELOAD => Ok(None),
            _ => self.reload(c).map(Some),
        }
    }

    fn current(&self) -> Option<(Instant, Arc<VerifyingKeySet>)> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn reload(&self, c: &mut DbConnection) -> CoreResult<Arc<VerifyingKeySet>> {
        let keys = Arc::new(crate::api::labels::verifying_keys(&labels::list_keys(c)?)?);
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}
