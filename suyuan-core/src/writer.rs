//! Group commit for SQLite.
//!
//! SQLite has one writer, and with `synchronous=FULL` every commit waits for the disk (about 2 ms here:
//! ~480 commits/s). Committing each request on its own would cap capture far below what a county's phones
//! send at harvest time. So SQLite writes share one write connection and one open transaction: each caller
//! runs its write in a savepoint of it (a failing write rolls back alone), and the last caller in line —
//! nobody else waiting for the connection, or the group full — commits for everyone. Every caller answers only
//! after the commit that covers its write, so an answer still means "durably stored", and one fsync serves
//! every request that arrived while the previous one was on the disk. PostgreSQL groups concurrent commits by
//! itself and does not use this.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use diesel::connection::TransactionManager;
use diesel::Connection;

use crate::db::DbConnection;
use crate::error::{CoreError, CoreResult};

/// Most writes committed together.
const MAX_GROUP: usize = 256;

type Tm = <DbConnection as Connection>::TransactionManager;

struct State {
    conn: DbConnection,
    /// Writes in the open transaction (0: no transaction open).
    in_group: usize,
    /// Number of the open group; a write waits until `committed` passes its group.
    group: u64,
    /// The last group whose commit finished.
    committed: u64,
    /// Recent groups whose commit failed, with the error (kept short: failures are rare).
    failed: std::collections::VecDeque<(u64, String)>,
}

/// The shared SQLite write connection with group commit.
pub struct Writer {
    state: Mutex<State>,
    done: Condvar,
    /// Callers that want the connection and do not have it yet.
    waiting: AtomicUsize,
}

impl Writer {
    /// Wraps the write connection.
    pub fn new(conn: DbConnection) -> Writer {
        Writer {
            state: Mutex::new(State {
                conn,
                in_group: 0,
                group: 1,
                committed: 0,
                failed: Default::default(),
            }),
            done: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> CoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| CoreError::Internal("the SQLite writer is poisoned".into()))
    }

    /// Runs `f` in a savepoint of the open group and returns its result once the group is committed.
    pub fn write<T>(&self, f: impl FnOnce(&mut DbConnection) -> CoreResult<T>) -> CoreResult<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let locked = self.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut st = locked?;
        if st.in_group == 0 {
            Tm::begin_transaction(&mut st.conn)?;
        }
        let result =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| st.conn.transaction(f)))
            {
                Ok(result) => result,
                Err(_) => {
                    // The savepoint may still be open: roll the whole group back and fail it, so that no waiter
                    // reports success for a write that is gone, and the connection is clean for the next group.
                    let mine = st.group;
                    for _ in 0..64 {
                        match Tm::transaction_manager_status_mut(&mut st.conn).transaction_depth() {
                            Ok(Some(_)) => {
                                if Tm::rollback_transaction(&mut st.conn).is_err() {
                                    break;
                                }
                            }
                            _ => break,
                        }
                    }
                    if st.failed.len() >= 1024 {
                        st.failed.pop_front();
                    }
                    st.failed
                        .push_back((mine, "a write in the group panicked".into()));
                    st.in_group = 0;
                    st.committed = mine;
                    st.group += 1;
                    self.done.notify_all();
                    return Err(CoreError::Internal(
                        "a write panicked; its group was rolled back".into(),
                    ));
                }
            };
        st.in_group += 1;
        let mine = st.group;
        if self.waiting.load(Ordering::SeqCst) == 0 || st.in_group >= MAX_GROUP {
            // Last in line: commit the group for everyone in it.
            if let Err(e) = Tm::commit_transaction(&mut st.conn) {
                tracing::error!(error = %e, "group commit failed");
                if st.failed.len() >= 1024 {
                    st.failed.pop_front();
                }
                st.failed.push_back((mine, e.to_string()));
            }
            st.in_group = 0;
            st.committed = mine;
            st.group += 1;
            self.done.notify_all();
        } else {
            while st.committed < mine {
                st = self
                    .done
                    .wait(st)
                    .map_err(|_| CoreError::Internal("the SQLite writer is poisoned".into()))?;
            }
        }
        match st.failed.iter().find(|(group, _)| *group == mine) {
            None => result,
            // Nothing of the group was stored, whatever this write computed.
            Some((_, e)) => Err(CoreError::Internal(format!("commit failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{DatabaseUrl, PoolConfig};
    use crate::model::{NewOrganisation, OrgKind};
    use crate::store::orgs;
    use crate::Database;

    fn org(name: String) -> NewOrganisation {
        NewOrganisation {
            name,
            kind: OrgKind::Farm,
            credit_code: None,
            division_code: "530424".into(),
            address: None,
            public_contact: None,
        }
    }

    #[test]
    fn concurrent_writes_are_all_committed_and_a_failure_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite {
            path: dir.path().join("w.sqlite"),
            create: true,
        };
        let db = Database::open(&url, &PoolConfig::default()).expect("open");
        std::thread::scope(|s| {
            for t in 0..8 {
                let db = db.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        let name = format!("农场 {t}-{i}");
                        let stored = db.write(|c| orgs::create(c, &org(name)));
                        assert!(stored.is_ok(), "{stored:?}");
                        // An invalid write in between fails alone.
                        let refused = db.write(|c| {
                            orgs::create(c, &org(format!("先写入 {t}-{i}")))?;
                            orgs::create(c, &org(String::new()))
                        });
                        assert!(refused.is_err());
                    }
                });
            }
        });
        let all = db
            .read(|c| {
                let mut n = 0;
                let mut page = crate::store::Page {
                    limit: Some(200),
                    after: None,
                };
                loop {
                    let p = orgs::list(c, page)?;
                    n += p.items.len();
                    match p.next_after {
                        Some(a) => page.after = Some(a),
                        None => return Ok(n),
                    }
                }
            })
            .expect("count");
        assert_eq!(
            all, 400,
            "every acknowledged write is stored, and no part of a refused one"
        );
    }
}
