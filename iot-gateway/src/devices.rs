//! The registered devices as the gateway checks messages against them: a cached copy of the
//! device list, so that a message costs no database round trip.
//!
//! The list is read whole at the first message and again every `runtime.device_refresh_ms`; a
//! client id missing from it is looked up on its own (a device registered a moment ago is
//! accepted at once), and a client id the database does not know is remembered as unknown for
//! `runtime.unknown_device_ttl_ms`, so that a flood from an unregistered device costs one lookup
//! per interval. While the database is unreachable, the last list keeps serving; a failed
//! refresh is tried again after a short pause rather than on every message.
//!
//! The cache is used from blocking threads only (the [`Store`] calls block).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::{DeviceInfo, Store};
use crate::topic::ClientId;

/// Most client ids remembered as unknown; past it the memory is cleared (a hostile client
/// inventing ids must not grow it without bound).
const MAX_UNKNOWN: usize = 10_000;

/// How long after a failed refresh the next one is tried.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// What the cache knows about a client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Registered (enabled or not).
    Found(DeviceInfo),
    /// Not registered.
    Unknown,
    /// Not in the cache, and the database cannot be asked now (why).
    Unavailable(String),
}

#[derive(Debug)]
pub(crate) struct DeviceCache {
    devices: HashMap<ClientId, DeviceInfo>,
    unknown: HashMap<ClientId, Instant>,
    next_refresh: Option<Instant>,
    refresh_every: Duration,
    unknown_ttl: Duration,
}

impl DeviceCache {
    pub(crate) fn new(refresh_every: Duration, unknown_ttl: Duration) -> Self {
        DeviceCache {
            devices: HashMap::new(),
            unknown: HashMap::new(),
            next_refresh: None,
            refresh_every,
            unknown_ttl,
        }
    }

    /// The registration of `client_id`, from the cache or the database.
    pub(crate) fn lookup(&mut self, store: &dyn Store, client_id: &ClientId) -> Lookup {
        let now = Instant::now();
        if self.next_refresh.is_none_or(|at| now >= at) {
            self.refresh(store, now);
        }
        if let Some(device) = self.devices.get(client_id) {
            return Lookup::Found(device.clone());
        }
        if let Some(&since) = self.unknown.get(client_id) {
            if now.duration_since(since) < self.unknown_ttl {
                return Lookup::Unknown;
            }
        }
        match store.device(client_id) {
            Ok(Some(device)) => {
                self.unknown.remove(client_id);
                self.devices.insert(client_id.clone(), device.clone());
                Lookup::Found(device)
            }
            Ok(None) => {
                if self.unknown.len() >= MAX_UNKNOWN {
                    self.unknown.clear();
                }
                self.unknown.insert(client_id.clone(), now);
                Lookup::Unknown
            }
            Err(e) => Lookup::Unavailable(e.to_string()),
        }
    }

    fn refresh(&mut self, store: &dyn Store, now: Instant) {
        match store.devices() {
            Ok(list) => {
                self.devices = list.into_iter().map(|d| (d.client_id.clone(), d)).collect();
                self.unknown.clear();
                self.next_refresh = Some(now + self.refresh_every);
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not read the device list; using the cached one");
                let pause = self
                    .refresh_every
                    .clamp(Duration::from_secs(1), REFRESH_RETRY);
                self.next_refresh = Some(now + pause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{CounterSnapshot, RefusalEntry};
    use crate::store::{Accepted, DeviceKind, StoreError};
    use crate::topic::SiteId;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Db {
        devices: Mutex<Vec<DeviceInfo>>,
        down: AtomicBool,
        list_calls: AtomicUsize,
        one_calls: AtomicUsize,
    }

    impl Store for Db {
        fn device(&self, id: &ClientId) -> Result<Option<DeviceInfo>, StoreError> {
            self.one_calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            let devices = self.devices.lock().unwrap();
            Ok(devices.iter().find(|d| &d.client_id == id).cloned())
        }
        fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
            self.list_calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            Ok(self.devices.lock().unwrap().clone())
        }
        fn write(&self, _: &[Accepted]) -> Result<(), StoreError> {
            Ok(())
        }
        fn add_refusals(&self, _: &CounterSnapshot, _: &[RefusalEntry]) -> Result<(), StoreError> {
            Ok(())
        }
        fn tick(&self, _: i64) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn device(id: &str) -> DeviceInfo {
        DeviceInfo {
            id: 1,
            client_id: ClientId::new(id).unwrap(),
            site: SiteId(1),
            kind: DeviceKind::Sensor,
            enabled: true,
        }
    }

    #[test]
    fn serves_from_the_list_looks_up_misses_and_remembers_unknowns() {
        let db = Db::default();
        db.devices.lock().unwrap().push(device("a"));
        let mut cache = DeviceCache::new(Duration::from_secs(60), Duration::from_secs(60));
        let a = ClientId::new("a").unwrap();
        let b = ClientId::new("b").unwrap();
        assert_eq!(cache.lookup(&db, &a), Lookup::Found(device("a")));
        assert_eq!(cache.lookup(&db, &a), Lookup::Found(device("a")));
        assert_eq!(db.list_calls.load(Ordering::SeqCst), 1);
        assert_eq!(db.one_calls.load(Ordering::SeqCst), 0);

        assert_eq!(cache.lookup(&db, &b), Lookup::Unknown);
        assert_eq!(cache.lookup(&db, &b), Lookup::Unknown);
        assert_eq!(
            db.one_calls.load(Ordering::SeqCst),
            1,
            "unknown is remembered"
        );

        // Registered meanwhile: found after the unknown-TTL.
        db.devices.lock().unwrap().push(device("b"));
        let mut cache = DeviceCache::new(Duration::from_secs(60), Duration::ZERO);
        let c = ClientId::new("c").unwrap();
        assert_eq!(cache.lookup(&db, &c), Lookup::Unknown);
        db.devices.lock().unwrap().push(device("c"));
        assert_eq!(cache.lookup(&db, &c), Lookup::Found(device("c")));
    }

    #[test]
    fn the_cached_list_serves_while_the_database_is_down() {
        let db = Db::default();
        db.devices.lock().unwrap().push(device("a"));
        let mut cache = DeviceCache::new(Duration::ZERO, Duration::from_secs(60));
        let a = ClientId::new("a").unwrap();
        assert!(matches!(cache.lookup(&db, &a), Lookup::Found(_)));
        db.down.store(true, Ordering::SeqCst);
        assert!(matches!(cache.lookup(&db, &a), Lookup::Found(_)));
        let lists = db.list_calls.load(Ordering::SeqCst);
        assert!(matches!(cache.lookup(&db, &a), Lookup::Found(_)));
        assert_eq!(
            db.list_calls.load(Ordering::SeqCst),
            lists,
            "a failed refresh is not retried on every message"
        );
        let z = ClientId::new("z").unwrap();
        assert!(matches!(cache.lookup(&db, &z), Lookup::Unavailable(_)));
    }
}
