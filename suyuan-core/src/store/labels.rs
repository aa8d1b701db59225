//! Labels: signing keys (public halves), serial allocation, label runs and the label lifecycle
//! (minted → active → void).
//!
//! Serial allocation is the part that must hold across replicas: every key row carries its
//! `next_sequence`, and a run takes its range with one `UPDATE … SET next_sequence = next_sequence + n
//! … RETURNING`. On PostgreSQL that statement holds the key row's lock until the run's transaction
//! commits, so two minting processes queue on it and always get disjoint ranges; on SQLite writes are
//! already serialised by [`crate::Database::write`]. The same statement serves both backends.
//!
//! Binding and voiding lock the run row (`FOR UPDATE` on PostgreSQL) before checking for overlaps, so
//! two people binding overlapping ranges of one run at once cannot both succeed; the batch row is locked
//! too, so a bind never slips past a concurrent recall.

use diesel::prelude::*;

use super::DbConnection;
use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{
    Actor, BatchStatus, LabelActivation, LabelLookup, LabelQuota, LabelRef, LabelRun, LabelRunId,
    LabelRunStatus, LabelScanStats, LabelState, LabelVoid, NewLabelRun, RunRequester, ScanVerdict,
    SigningKeyInfo, Suspicion, MAX_LABEL_SEQUENCE,
};
use crate::on_backend;
use crate::policy;
use crate::schema::{
    label_activations::dsl as la, label_quotas::dsl as lq, label_runs::dsl as lr,
    label_voids::dsl as lv, signing_keys::dsl as sk,
};
use crate::time::{now_millis, to_datetime};
use crate::{BatchId, OrgId, ProductId, UserId};

/// The only signature algorithm of label format v1.
pub const ALGORITHM: &str = "Ed25519";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::signing_keys)]
struct KeyRow {
    key_id: i64,
    algorithm: String,
    public_key: String,
    next_sequence: i64,
    created_at: i64,
    retired_at: Option<i64>,
}

impl KeyRow {
    fn into_model(self) -> SigningKeyInfo {
        SigningKeyInfo {
            key_id: self.key_id,
            algorithm: self.algorithm,
            public_key: self.public_key,
            next_sequence: self.next_sequence,
            created_at: to_datetime(self.created_at),
            retired_at: self.retired_at.map(to_datetime),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::label_runs)]
struct RunRow {
    id: i64,
    org_id: i64,
    product_id: i64,
    key_id: i64,
    first_sequence: i64,
    label_count: i64,
    layout: String,
    host: String,
    status: String,
    requested_by: Option<i64>,
    created_at: i64,
    finished_at: Option<i64>,
    output: Option<String>,
    error: Option<String>,
}

impl RunRow {
    fn into_model(self) -> CoreResult<LabelRun> {
        Ok(LabelRun {
            id: LabelRunId(self.id),
            org_id: OrgId(self.org_id),
            product_id: ProductId(self.product_id),
            key_id: self.key_id,
            first_sequence: self.first_sequence,
            count: self.label_count,
            layout: self.layout,
            host: self.host,
            status: LabelRunStatus::parse(&self.status).ok_or_else(|| {
                CoreError::Internal(format!("unexpected label run status {:?}", self.status))
            })?,
            requested_by: self.requested_by.map(UserId),
            created_at: to_datetime(self.created_at),
            finished_at: self.finished_at.map(to_datetime),
            output: self.output,
            error: self.error,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::label_activations)]
struct ActivationRow {
    id: i64,
    run_id: i64,
    key_id: i64,
    first_sequence: i64,
    last_sequence: i64,
    batch_id: i64,
    activated_by: i64,
    activated_at: i64,
}

impl ActivationRow {
    fn into_model(self) -> LabelActivation {
        LabelActivation {
            id: self.id,
            run_id: LabelRunId(self.run_id),
            key_id: self.key_id,
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
            batch_id: BatchId(self.batch_id),
            activated_by: UserId(self.activated_by),
            activated_at: to_datetime(self.activated_at),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::label_voids)]
struct VoidRow {
    id: i64,
    run_id: i64,
    key_id: i64,
    sequence: i64,
    reason: String,
    voided_by: i64,
    voided_at: i64,
}

impl VoidRow {
    fn into_model(self) -> LabelVoid {
        LabelVoid {
            id: self.id,
            run_id: LabelRunId(self.run_id),
            key_id: self.key_id,
            sequence: self.sequence,
            reason: self.reason,
            voided_by: UserId(self.voided_by),
            voided_at: to_datetime(self.voided_at),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Keys

/// Registers the public half of a new signing key. Key ids are never reused (a reused id would make
/// labels signed by the old key fail to verify), so a taken id is a 409.
pub fn register_key(
    conn: &mut DbConnection,
    key_id: i64,
    public_key_hex: &str,
) -> CoreResult<SigningKeyInfo> {
    if !(0..=99).contains(&key_id) {
        return Err(CoreError::invalid("invalid_key_id", "key ids are 0–99"));
    }
    let valid_hex = public_key_hex.len() == 64
        && public_key_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid_hex {
        return Err(CoreError::invalid(
            "invalid_public_key",
            "a public key is 32 bytes in lowercase hex",
        ));
    }
    let inserted = on_backend!(conn, c => diesel::insert_into(sk::signing_keys)
        .values((
            sk::key_id.eq(key_id),
            sk::algorithm.eq(ALGORITHM),
            sk::public_key.eq(public_key_hex),
            sk::next_sequence.eq(1i64),
            sk::created_at.eq(now_millis()),
        ))
        .returning(KeyRow::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => Ok(row.into_model()),
        Err(e) if super::is_unique_violation(&e) => Err(CoreError::conflict(
            "duplicate_key",
            format!(
                "key id {key_id} (or this public key) is already registered; ids are never reused"
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Every key ever registered, retired ones included (they still verify old labels), by id.
pub fn list_keys(conn: &mut DbConnection) -> CoreResult<Vec<SigningKeyInfo>> {
    let rows: Vec<KeyRow> = on_backend!(conn, c => sk::signing_keys
        .order(sk::key_id)
        .select(KeyRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(KeyRow::into_model).collect())
}

/// The key that mints new labels: the newest (highest id) key not retired.
pub fn active_key(conn: &mut DbConnection) -> CoreResult<Option<SigningKeyInfo>> {
    let row: Option<KeyRow> = on_backend!(conn, c => sk::signing_keys
        .filter(sk::retired_at.is_null())
        .order(sk::key_id.desc())
        .select(KeyRow::as_select())
        .first(c)
        .optional())?;
    Ok(row.map(KeyRow::into_model))
}

/// The id a new key gets: one above the highest ever registered (ids are never reused).
pub fn next_key_id(conn: &mut DbConnection) -> CoreResult<i64> {
    let max: Option<i64> = on_backend!(conn, c => sk::signing_keys
        .select(diesel::dsl::max(sk::key_id))
        .first(c))?;
    let next = max.map_or(1, |m| m + 1);
    if next > 99 {
        return Err(CoreError::conflict(
            "key_ids_exhausted",
            "all 100 key ids are used",
        ));
    }
    Ok(next)
}

/// Retires every key but `keep`: they stop minting, and their labels keep verifying.
pub fn retire_other_keys(conn: &mut DbConnection, keep: i64) -> CoreResult<usize> {
    let now = now_millis();
    Ok(on_backend!(conn, c => diesel::update(
            sk::signing_keys
                .filter(sk::key_id.ne(keep))
                .filter(sk::retired_at.is_null()),
        )
        .set(sk::retired_at.eq(now))
        .execute(c))?)
}

// ---------------------------------------------------------------------------------------------------
// Runs

/// Bounds on runs reserved but not yet minted, checked when a run is requested through the API (the minter
/// works one run at a time, so a queue longer than this is only disk and waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Most runs of one organisation queued or minting at once.
    pub per_org: i64,
    /// Most runs queued or minting at once over all organisations.
    pub overall: i64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            per_org: 2,
            overall: 8,
        }
    }
}

/// How [`create_run_with`] treats the quota and the bounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunChecks {
    /// Refuse when this many runs are queued already (`too_many_label_runs`, 429); `None` for the command
    /// line, which mints in its own process rather than queueing.
    pub limits: Option<RunLimits>,
    /// Mint past the organisation's quota (the command line's `--over-quota`, logged by the caller); the
    /// labels still count as used.
    pub over_quota: bool,
}

/// Reserves a run's range of serials for a product, counting its labels against the product's
/// organisation's quota; no bound on queued runs (see [`create_run_with`]).
pub fn create_run(
    conn: &mut DbConnection,
    requester: RunRequester<'_>,
    new: &NewLabelRun,
) -> CoreResult<LabelRun> {
    create_run_with(conn, requester, new, RunChecks::default())
}

/// Reserves a run's range of serials for a product: checks the requester, advances the key's allocator,
/// counts the labels against the organisation's quota and, with `checks.limits`, refuses when too many runs
/// are queued. All of it in the caller's transaction, so a refusal reserves nothing. On PostgreSQL the key
/// row's lock (taken first) queues every run request of every replica, and the quota row's lock the
/// organisation's: the counts read after them are exact.
pub fn create_run_with(
    conn: &mut DbConnection,
    requester: RunRequester<'_>,
    new: &NewLabelRun,
    checks: RunChecks,
) -> CoreResult<LabelRun> {
    new.validate()?;
    let product = super::sites::get_product(conn, new.product_id)?;
    let requested_by = match requester {
        RunRequester::User(actor) => {
            policy::ensure_label_write(actor, product.org_id)?;
            Some(actor.user_id.0)
        }
        RunRequester::CommandLine => None,
    };
    let n = new.count;
    // One statement: read-and-advance under the row lock.
    let next: Option<i64> = on_backend!(conn, c => diesel::update(
            sk::signing_keys
                .filter(sk::key_id.eq(new.key_id))
                .filter(sk::retired_at.is_null()),
        )
        .set(sk::next_sequence.eq(sk::next_sequence + n))
        .returning(sk::next_sequence)
        .get_result(c)
        .optional())?;
    let Some(next) = next else {
        return Err(CoreError::invalid(
            "key_not_active",
            format!(
                "signing key {} is not registered or is retired; mint with the active key",
                new.key_id
            ),
        ));
    };
    let first = next - n;
    if next - 1 > MAX_LABEL_SEQUENCE {
        // The error rolls the transaction back, so the key's counter is not advanced.
        return Err(CoreError::conflict(
            "sequences_exhausted",
            format!(
                "key {} has no room for {n} more labels; rotate the key",
                new.key_id
            ),
        ));
    }
    reserve_quota(conn, product.org_id, n, checks.over_quota)?;
    if let Some(limits) = checks.limits {
        check_queued_runs(conn, product.org_id, limits)?;
    }
    let row = on_backend!(conn, c => diesel::insert_into(lr::label_runs)
        .values((
            lr::org_id.eq(product.org_id.0),
            lr::product_id.eq(product.id.0),
            lr::key_id.eq(new.key_id),
            lr::first_sequence.eq(first),
            lr::label_count.eq(n),
            lr::layout.eq(&new.layout),
            lr::host.eq(&new.host),
            lr::status.eq(LabelRunStatus::Minting.as_str()),
            lr::requested_by.eq(requested_by),
            lr::created_at.eq(now_millis()),
        ))
        .returning(RunRow::as_returning())
        .get_result(c))?;
    row.into_model()
}

/// Counts `n` labels against `org`'s quota in one guarded statement (which also locks the quota row until
/// the transaction ends); refuses with `label_quota_exceeded` and the remaining amount when they do not fit.
fn reserve_quota(conn: &mut DbConnection, org: OrgId, n: i64, over_quota: bool) -> CoreResult<()> {
    ensure_quota_row(conn, org)?;
    let target = lq::label_quotas.filter(lq::org_id.eq(org.0));
    let moved = if over_quota {
        on_backend!(conn, c => diesel::update(target).set(lq::used.eq(lq::used + n)).execute(c))?
    } else {
        on_backend!(conn, c => diesel::update(
            target.filter(lq::quota.is_null().or(lq::quota.ge((lq::used + n).nullable()))),
        )
        .set(lq::used.eq(lq::used + n))
        .execute(c))?
    };
    if moved == 1 {
        return Ok(());
    }
    let quota = label_quota(conn, org)?;
    let remaining = quota.remaining.unwrap_or(0);
    Err(CoreError::Conflict {
        code: "label_quota_exceeded",
        message: format!(
            "the organisation's label quota is {}, of which {} are used: {remaining} remaining, {n} requested",
            quota.quota.unwrap_or(0),
            quota.used
        ),
        details: Some(serde_json::json!({
            "quota": quota.quota,
            "used": quota.used,
            "remaining": remaining,
            "requested": n,
        })),
    })
}

/// Refuses with `too_many_label_runs` (429) when the organisation, or everyone together, has as many runs
/// queued or minting as `limits` allow. Runs from the command line count too: they fill the same disk.
fn check_queued_runs(conn: &mut DbConnection, org: OrgId, limits: RunLimits) -> CoreResult<()> {
    let minting = LabelRunStatus::Minting.as_str();
    let of_org: i64 = on_backend!(conn, c => lr::label_runs
        .filter(lr::status.eq(minting))
        .filter(lr::org_id.eq(org.0))
        .count()
        .get_result(c))?;
    if of_org >= limits.per_org {
        return Err(CoreError::Limited {
            code: "too_many_label_runs",
            message: format!(
                "your organisation already has {of_org} label runs queued or minting (at most {}); \
                 request more once one has finished",
                limits.per_org
            ),
        });
    }
    let all: i64 = on_backend!(conn, c => lr::label_runs
        .filter(lr::status.eq(minting))
        .count()
        .get_result(c))?;
    if all >= limits.overall {
        return Err(CoreError::Limited {
            code: "too_many_label_runs",
            message: format!(
                "{all} label runs are queued or minting on this platform (at most {}); try again later",
                limits.overall
            ),
        });
    }
    Ok(())
}

fn ensure_quota_row(conn: &mut DbConnection, org: OrgId) -> CoreResult<()> {
    on_backend!(conn, c => diesel::insert_into(lq::label_quotas)
        .values((lq::org_id.eq(org.0), lq::used.eq(0i64)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// quota, used, updated_by, updated_at of a `label_quotas` row.
type QuotaRow = (Option<i64>, i64, Option<i64>, Option<i64>);

/// An organisation's label quota, what it has used and what remains (`None`: no limit).
pub fn label_quota(conn: &mut DbConnection, org: OrgId) -> CoreResult<LabelQuota> {
    super::orgs::get(conn, org)?;
    let row: Option<QuotaRow> = on_backend!(conn, c => lq::label_quotas
        .find(org.0)
        .select((lq::quota, lq::used, lq::updated_by, lq::updated_at))
        .first(c)
        .optional())?;
    let (quota, used, updated_by, updated_at) = row.unwrap_or((None, 0, None, None));
    Ok(LabelQuota {
        org_id: org,
        quota,
        used,
        remaining: quota.map(|q| (q - used).max(0)),
        updated_by: updated_by.map(UserId),
        updated_at: updated_at.map(to_datetime),
    })
}

/// Sets (or with `None` lifts) an organisation's label quota; operators only. A quota below what is used
/// already is allowed: it refuses every further run.
pub fn set_label_quota(
    conn: &mut DbConnection,
    actor: &Actor,
    org: OrgId,
    quota: Option<i64>,
) -> CoreResult<LabelQuota> {
    policy::ensure_operator(actor)?;
    if quota.is_some_and(|q| !(0..=MAX_LABEL_SEQUENCE).contains(&q)) {
        return Err(CoreError::invalid(
            "invalid_quota",
            format!("a quota is 0 – {MAX_LABEL_SEQUENCE} labels, or null for no limit"),
        ));
    }
    super::orgs::get(conn, org)?;
    ensure_quota_row(conn, org)?;
    on_backend!(conn, c => diesel::update(lq::label_quotas.find(org.0))
        .set((
            lq::quota.eq(quota),
            lq::updated_by.eq(Some(actor.user_id.0)),
            lq::updated_at.eq(Some(now_millis())),
        ))
        .execute(c))?;
    label_quota(conn, org)
}

fn set_run_outcome(
    conn: &mut DbConnection,
    id: LabelRunId,
    status: LabelRunStatus,
    output: Option<&str>,
    error: Option<&str>,
) -> CoreResult<LabelRun> {
    let current = get_run(conn, id)?;
    if current.status != LabelRunStatus::Minting {
        return Err(CoreError::conflict(
            "run_already_ended",
            format!("run {id} is already {}", current.status),
        ));
    }
    let row = on_backend!(conn, c => diesel::update(lr::label_runs.find(id.0))
        .set((
            lr::status.eq(status.as_str()),
            lr::finished_at.eq(now_millis()),
            lr::output.eq(output),
            lr::error.eq(error),
        ))
        .returning(RunRow::as_returning())
        .get_result(c))?;
    if status == LabelRunStatus::Failed {
        // A failed run's labels were never written: they no longer count against the quota.
        ensure_quota_row(conn, current.org_id)?;
        let n = current.count;
        let quota = lq::label_quotas.find(current.org_id.0);
        let moved = on_backend!(conn, c => diesel::update(quota.filter(lq::used.ge(n)))
            .set(lq::used.eq(lq::used - n))
            .execute(c))?;
        if moved == 0 {
            on_backend!(conn, c => diesel::update(quota).set(lq::used.eq(0i64)).execute(c))?;
        }
    }
    row.into_model()
}

/// Marks a run finished, with the files it wrote (one per line). Its labels can then be activated.
pub fn finish_run(conn: &mut DbConnection, id: LabelRunId, output: &str) -> CoreResult<LabelRun> {
    set_run_outcome(conn, id, LabelRunStatus::Finished, Some(output), None)
}

/// Marks a run failed with the reason. Its range stays reserved (never reissued).
pub fn fail_run(conn: &mut DbConnection, id: LabelRunId, error: &str) -> CoreResult<LabelRun> {
    set_run_outcome(conn, id, LabelRunStatus::Failed, None, Some(error))
}

/// One run, without access checks.
pub fn get_run(conn: &mut DbConnection, id: LabelRunId) -> CoreResult<LabelRun> {
    on_backend!(conn, c => lr::label_runs.find(id.0).select(RunRow::as_select()).first(c))
        .or_not_found("label run")?
        .into_model()
}

/// One run, if the actor may see it: members of the product's organisation, regulators, operators.
pub fn get_run_for(conn: &mut DbConnection, actor: &Actor, id: LabelRunId) -> CoreResult<LabelRun> {
    let run = get_run(conn, id)?;
    policy::ensure_label_read(actor, run.org_id)?;
    Ok(run)
}

/// One page of runs, newest last (keyset by id); `org` filters to one organisation (the caller's own,
/// unless it reads everything, see `policy::reads_all`).
pub fn list_runs(
    conn: &mut DbConnection,
    org: Option<OrgId>,
    page: super::Page,
) -> CoreResult<super::Paged<LabelRun>> {
    let limit = page.limit()?;
    let rows: Vec<RunRow> = on_backend!(conn, c => {
        let mut q = lr::label_runs.filter(lr::id.gt(page.after())).into_boxed();
        if let Some(org) = org {
            q = q.filter(lr::org_id.eq(org.0));
        }
        q.order(lr::id).limit(limit + 1).select(RunRow::as_select()).load(c)
    })?;
    let runs = rows
        .into_iter()
        .map(RunRow::into_model)
        .collect::<CoreResult<Vec<_>>>()?;
    Ok(super::Paged::from_fetched(runs, limit, |r| r.id.0))
}

/// Runs asked for through the API that are still `minting`: after a restart their files are written
/// again (signatures are deterministic, so a second writer produces the same bytes).
pub fn unfinished_api_runs(conn: &mut DbConnection) -> CoreResult<Vec<LabelRunId>> {
    let ids: Vec<i64> = on_backend!(conn, c => lr::label_runs
        .filter(lr::status.eq(LabelRunStatus::Minting.as_str()))
        .filter(lr::requested_by.is_not_null())
        .order(lr::id)
        .select(lr::id)
        .load(c))?;
    Ok(ids.into_iter().map(LabelRunId).collect())
}

/// The run whose range holds `label`, locked on PostgreSQL when `lock` (SQLite writes are serialised).
fn run_containing(
    conn: &mut DbConnection,
    label: LabelRef,
    lock: bool,
) -> CoreResult<Option<LabelRun>> {
    let (k, s) = (label.key_id, label.sequence);
    let row: Option<RunRow> = match conn {
        DbConnection::Postgresql(c) if lock => lr::label_runs
            .filter(lr::key_id.eq(k))
            .filter(lr::first_sequence.le(s))
            .filter((lr::first_sequence + lr::label_count).gt(s))
            .for_update()
            .select(RunRow::as_select())
            .first(c)
            .optional()?,
        _ => on_backend!(conn, c => lr::label_runs
            .filter(lr::key_id.eq(k))
            .filter(lr::first_sequence.le(s))
            .filter((lr::first_sequence + lr::label_count).gt(s))
            .order(lr::first_sequence.desc())
            .select(RunRow::as_select())
            .first(c)
            .optional())?,
    };
    row.map(RunRow::into_model).transpose()
}

// ---------------------------------------------------------------------------------------------------
// Lifecycle

/// Binds the labels `first..=last` (one key, one run) to a batch: minted → active.
///
/// Refused with 409 when the batch is blocked (`batch_blocked`) or recalled (`batch_recalled`), the
/// message and `details` giving the reason; with 409 when a label of the range is already active
/// (`label_already_active`) or void (`label_void`); with 404 when `first` was never minted and 422
/// when the range leaves its run (`range_spans_runs`).
pub fn bind(
    conn: &mut DbConnection,
    actor: &Actor,
    first: LabelRef,
    last: LabelRef,
    batch_id: BatchId,
) -> CoreResult<LabelActivation> {
    if first.key_id != last.key_id {
        return Err(CoreError::invalid(
            "range_spans_keys",
            "the first and last label were signed by different keys",
        ));
    }
    if first.sequence > last.sequence {
        return Err(CoreError::invalid(
            "invalid_range",
            "the last label comes before the first",
        ));
    }
    let run = run_containing(conn, first, true)?.ok_or(CoreError::NotFound { what: "label" })?;
    policy::ensure_label_write(actor, run.org_id)?;
    if last.sequence > run.last_sequence() {
        return Err(CoreError::invalid(
            "range_spans_runs",
            format!(
                "the range leaves run {} (which ends at sequence {}); bind each run's labels separately",
                run.id,
                run.last_sequence()
            ),
        ));
    }
    if run.status != LabelRunStatus::Finished {
        return Err(CoreError::invalid(
            "run_not_finished",
            format!(
                "run {} is {}; only labels of a finished run can be activated",
                run.id, run.status
            ),
        ));
    }
    let batch = super::batches::get_for_update(conn, batch_id)?;
    let rel = super::batches::relation(conn, actor, &batch)?;
    policy::ensure_read_batch(actor, &batch, rel)?;
    // The maker labels its batch, often after it has left (the roll is scanned in the office); whoever
    // holds it now may label it too (a packer labelling on receipt).
    if batch.custodian_org_id != actor.org_id && batch.org_id != actor.org_id {
        return Err(CoreError::forbidden(
            "only the organisation that made or holds the batch may label it",
        ));
    }
    if batch.product_id != run.product_id {
        return Err(CoreError::invalid(
            "product_mismatch",
            format!(
                "these labels were minted for product {}, the batch is of product {}",
                run.product_id, batch.product_id
            ),
        ));
    }
    match batch.status {
        BatchStatus::Open => {}
        status @ (BatchStatus::Blocked | BatchStatus::Recalled) => {
            let reason = batch.status_reason.clone().unwrap_or_default();
            let (code, word) = match status {
                BatchStatus::Blocked => ("batch_blocked", "blocked"),
                _ => ("batch_recalled", "recalled"),
            };
            return Err(CoreError::Conflict {
                code,
                message: format!("batch {} is {word}: {reason}", batch.id),
                details: Some(serde_json::json!({
                    "batch_id": batch.id,
                    "status": status,
                    "reason": batch.status_reason,
                })),
            });
        }
    }
    let (k, a, b) = (first.key_id, first.sequence, last.sequence);
    let overlapping: Option<ActivationRow> = on_backend!(conn, c => la::label_activations
        .filter(la::key_id.eq(k))
        .filter(la::first_sequence.le(b))
        .filter(la::last_sequence.ge(a))
        .order(la::first_sequence)
        .select(ActivationRow::as_select())
        .first(c)
        .optional())?;
    if let Some(o) = overlapping {
        return Err(CoreError::Conflict {
            code: "label_already_active",
            message: format!(
                "labels {}–{} of key {k} are already bound to batch {}",
                o.first_sequence.max(a),
                o.last_sequence.min(b),
                o.batch_id
            ),
            details: Some(serde_json::json!({
                "batch_id": o.batch_id,
                "first_sequence": o.first_sequence,
                "last_sequence": o.last_sequence,
            })),
        });
    }
    let void: Option<i64> = on_backend!(conn, c => lv::label_voids
        .filter(lv::key_id.eq(k))
        .filter(lv::sequence.ge(a))
        .filter(lv::sequence.le(b))
        .order(lv::sequence)
        .select(lv::sequence)
        .first(c)
        .optional())?;
    if let Some(seq) = void {
        return Err(CoreError::Conflict {
            code: "label_void",
            message: format!("label {seq} of key {k} is void and cannot be activated"),
            details: Some(serde_json::json!({ "sequence": seq })),
        });
    }
    let row = on_backend!(conn, c => diesel::insert_into(la::label_activations)
        .values((
            la::run_id.eq(run.id.0),
            la::key_id.eq(k),
            la::first_sequence.eq(a),
            la::last_sequence.eq(b),
            la::batch_id.eq(batch.id.0),
            la::activated_by.eq(actor.user_id.0),
            la::activated_at.eq(now_millis()),
        ))
        .returning(ActivationRow::as_returning())
        .get_result(c))?;
    Ok(row.into_model())
}

/// Voids one label (minted or active → void), with the reason. Voiding twice is a 409.
pub fn void(
    conn: &mut DbConnection,
    actor: &Actor,
    label: LabelRef,
    reason: &str,
) -> CoreResult<LabelVoid> {
    let run = run_containing(conn, label, true)?.ok_or(CoreError::NotFound { what: "label" })?;
    policy::ensure_label_write(actor, run.org_id)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CoreError::invalid(
            "missing_reason",
            "say why the label is voided",
        ));
    }
    let inserted = on_backend!(conn, c => diesel::insert_into(lv::label_voids)
        .values((
            lv::run_id.eq(run.id.0),
            lv::key_id.eq(label.key_id),
            lv::sequence.eq(label.sequence),
            lv::reason.eq(reason),
            lv::voided_by.eq(actor.user_id.0),
            lv::voided_at.eq(now_millis()),
        ))
        .returning(VoidRow::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => Ok(row.into_model()),
        Err(e) if super::is_unique_violation(&e) => Err(CoreError::conflict(
            "label_already_void",
            format!(
                "label {} of key {} is already void",
                label.sequence, label.key_id
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// What the database says about one label: its state, run, product and batch (see [`lookup_for_scan`]).
pub fn lookup(conn: &mut DbConnection, label: LabelRef) -> CoreResult<LabelLookup> {
    Ok(lookup_for_scan(conn, label)?.lookup)
}

/// What a scan or a verification needs to know about a label, read in one statement: its run, activation,
/// void, batch status and scan statistics — one round trip instead of five, which is what a database
/// server on another machine (or busy with thousands of scans a second) notices.
#[derive(Debug, Clone)]
pub struct LabelForScan {
    pub lookup: crate::model::LabelLookup,
    pub batch_status: Option<crate::model::BatchStatus>,
    pub batch_reason: Option<String>,
    pub stats: Option<LabelScanStats>,
}

impl LabelForScan {
    /// What a consumer holding a validly signed code of this label is told.
    pub fn verdict(&self) -> ScanVerdict {
        match (self.lookup.state, self.batch_status) {
            (LabelState::NotMinted, _) => ScanVerdict::NotMinted,
            (LabelState::Minted, _) => ScanVerdict::NotActivated,
            (LabelState::Void, _) => ScanVerdict::Void,
            (LabelState::Active, Some(BatchStatus::Recalled)) => ScanVerdict::Recalled,
            (LabelState::Active, Some(BatchStatus::Blocked)) => ScanVerdict::OnHold,
            (LabelState::Active, _) => ScanVerdict::Active,
        }
    }
}

type ScanRow14 = (
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The one look-up of a label's state: [`LabelForScan`] for a label. A consumer's scan asks it, so it
/// returns only what the scan page shows.
pub fn lookup_for_scan(conn: &mut DbConnection, label: LabelRef) -> CoreResult<LabelForScan> {
    use crate::schema::{batches::dsl as b, label_scan_stats::dsl as st};
    let (k, s) = (label.key_id, label.sequence);
    let row: Option<ScanRow14> = on_backend!(conn, c => lr::label_runs
        .left_join(
            la::label_activations.on(la::key_id
                .eq(lr::key_id)
                .and(la::first_sequence.le(s))
                .and(la::last_sequence.ge(s))),
        )
        .left_join(lv::label_voids.on(lv::key_id.eq(lr::key_id).and(lv::sequence.eq(s))))
        .left_join(b::batches.on(b::id.nullable().eq(la::batch_id.nullable())))
        .left_join(st::label_scan_stats.on(st::key_id.eq(lr::key_id).and(st::sequence.eq(s))))
        .filter(lr::key_id.eq(k))
        .filter(lr::first_sequence.le(s))
        .filter((lr::first_sequence + lr::label_count).gt(s))
        .order(lr::first_sequence.desc())
        .select((
            lr::id,
            lr::org_id,
            lr::product_id,
            la::batch_id.nullable(),
            lv::reason.nullable(),
            b::status.nullable(),
            b::status_reason.nullable(),
            st::scans.nullable(),
            st::devices.nullable(),
            st::first_at.nullable(),
            st::first_division.nullable(),
            st::last_at.nullable(),
            st::last_division.nullable(),
            st::suspicion.nullable(),
        ))
        .first(c)
        .optional())?;
    let Some(r) = row else {
        return Ok(LabelForScan {
            lookup: LabelLookup {
                label,
                state: LabelState::NotMinted,
                run_id: None,
                org_id: None,
                product_id: None,
                batch_id: None,
                void_reason: None,
            },
            batch_status: None,
            batch_reason: None,
            // Signed but never minted (a leaked key): rare, so a second statement is fine here.
            stats: super::scans::stats(conn, label)?,
        });
    };
    let state = LabelState::of_minted(r.4.is_some(), r.3.is_some());
    let stats = match (r.7, r.8, r.9, r.11) {
        (Some(scans), Some(devices), Some(first_at), Some(last_at)) => Some(LabelScanStats {
            label,
            scans,
            devices,
            first_at: to_datetime(first_at),
            first_division: r.10,
            last_at: to_datetime(last_at),
            last_division: r.12,
            suspicion: r.13.as_deref().and_then(Suspicion::parse),
        }),
        _ => None,
    };
    Ok(LabelForScan {
        lookup: LabelLookup {
            label,
            state,
            run_id: Some(LabelRunId(r.0)),
            org_id: Some(OrgId(r.1)),
            product_id: Some(ProductId(r.2)),
            batch_id: r.3.map(BatchId),
            void_reason: r.4,
        },
        batch_status: r.5.as_deref().and_then(BatchStatus::parse),
        batch_reason: r.6,
        stats,
    })
}

/// The activations of a run, for its organisation and regulators.
pub fn activations_for(
    conn: &mut DbConnection,
    actor: &Actor,
    run: LabelRunId,
) -> CoreResult<Vec<LabelActivation>> {
    get_run_for(conn, actor, run)?;
    let rows: Vec<ActivationRow> = on_backend!(conn, c => la::label_activations
        .filter(la::run_id.eq(run.0))
        .order(la::first_sequence)
        .select(ActivationRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(ActivationRow::into_model).collect())
}

/// The voids of a run, for its organisation and regulators.
pub fn voids_for(
    conn: &mut DbConnection,
    actor: &Actor,
    run: LabelRunId,
) -> CoreResult<Vec<LabelVoid>> {
    get_run_for(conn, actor, run)?;
    let rows: Vec<VoidRow> = on_backend!(conn, c => lv::label_voids
        .filter(lv::run_id.eq(run.0))
        .order(lv::sequence)
        .select(VoidRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(VoidRow::into_model).collect())
}
