//! The hash chain: records cannot be updated or deleted through SQL, and a change made around that (by
//! someone with the database's admin rights) is caught by `suyuan verify chain`: a changed record by its
//! hash, a batch row whose status or custody its records contradict by re-deriving them, and a tail cut
//! off together with the head by a signed anchor kept outside the database.

use std::path::{Path, PathBuf};

use serde_json::json;
use suyuan_core::store::verify;
use suyuan_label_gen::keystore::KeyStore;
use suyuan_server::commands::verify::{check_chain, ChainArgs, FullReport, VerifyCommand};
use suyuan_server::commands::{anchor, keys as keys_cmd, DataArgs};

use crate::support::world::{inspection, note, spraying};
use crate::support::{Backend, TestApp, World};

crate::both_backends!(
    records_are_append_only_and_tampering_is_detected,
    a_recall_erased_in_the_database_is_reported,
    a_block_or_custody_changed_in_the_database_is_reported,
    a_truncated_tail_is_caught_by_an_anchor_kept_elsewhere,
    a_forged_anchor_is_reported,
    replicas_make_one_anchor_per_interval,
);

fn chain_args(app: &TestApp, data_dir: &Path, anchors: Vec<PathBuf>) -> ChainArgs {
    let url = match &app.test_db.url {
        suyuan_core::db::DatabaseUrl::Postgres(u) => u.clone(),
        suyuan_core::db::DatabaseUrl::Sqlite { path, .. } => path.to_string_lossy().into_owned(),
    };
    ChainArgs {
        data: DataArgs {
            data_dir: data_dir.into(),
            database_url: Some(url),
            media_dir: None,
        },
        json: false,
        anchors,
        keys: None,
    }
}

fn verify_command(app: &TestApp) -> bool {
    let args = chain_args(app, Path::new("./unused"), Vec::new());
    suyuan_server::commands::verify::run(VerifyCommand::Chain(args)).expect("verify runs")
}

/// The full report, as `suyuan verify chain --json` prints it.
fn full_report(app: &TestApp, data_dir: &Path, anchors: Vec<PathBuf>) -> FullReport {
    let report = check_chain(&chain_args(app, data_dir, anchors), |_| {}).expect("verify runs");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["intact"], report.intact);
    report
}

/// Runs SQL with the records' append-only guard switched off, as an administrator could.
fn around_the_guard(app: &TestApp, sql: &str) {
    let (off, on) = match app.test_db.backend {
        Backend::Sqlite => (
            "DROP TRIGGER records_append_only_update; DROP TRIGGER records_append_only_delete",
            "CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'records are append-only'); END; \
             CREATE TRIGGER records_append_only_delete BEFORE DELETE ON records BEGIN SELECT RAISE(ABORT, 'records are append-only'); END",
        ),
        Backend::Postgres => (
            "ALTER TABLE records DISABLE TRIGGER records_append_only",
            "ALTER TABLE records ENABLE TRIGGER records_append_only",
        ),
    };
    app.test_db.raw(&format!("{off}; {sql}; {on};"));
}

fn records_are_append_only_and_tampering_is_detected(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    for body in [spraying(20, 14), note("一"), note("二")] {
        assert_eq!(app.post(&path, Some(&w.farmer.token), &body).0, 201);
    }
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    assert_eq!(
        (report.records, report.issues.len()),
        (3, 0),
        "{:?}",
        report.issues
    );
    assert!(verify_command(&app), "an intact database verifies");

    // The database itself refuses edits and deletions.
    let update = "UPDATE records SET details = replace(details, '30.0', '3.0') WHERE seq = 1";
    let err = app.test_db.try_raw(update).expect_err("update refused");
    assert!(err.contains("append-only"), "{err}");
    let err = app
        .test_db
        .try_raw("DELETE FROM records WHERE seq = 3")
        .expect_err("delete refused");
    assert!(err.contains("append-only"), "{err}");

    // An administrator who switches the guard off and edits a dose is still caught.
    let (off, on) = match app.test_db.backend {
        Backend::Sqlite => (
            "DROP TRIGGER records_append_only_update",
            "CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;",
        ),
        Backend::Postgres => ("ALTER TABLE records DISABLE TRIGGER records_append_only", "ALTER TABLE records ENABLE TRIGGER records_append_only"),
    };
    app.test_db.raw(&format!("{off}; {update}; {on};"));
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
    assert_eq!(report.issues[0].seq, Some(1));
    assert!(
        report.issues[0].problem.contains("changed"),
        "{:?}",
        report.issues[0]
    );
    assert!(!verify_command(&app), "the command reports the tampering");
}

fn mismatches(report: &verify::ChainReport) -> Vec<(i64, String, String, String)> {
    report
        .issues
        .iter()
        .filter_map(|i| {
            i.mismatch.as_ref().map(|m| {
                (
                    i.batch_id,
                    m.column.clone(),
                    m.stored.clone(),
                    m.derived.clone(),
                )
            })
        })
        .collect()
}

fn a_recall_erased_in_the_database_is_reported(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    assert_eq!(app.post(&path, Some(&w.farmer.token), &note("一")).0, 201);
    let (s, out) = app.post(
        &format!("/api/v1/batches/{}/recall", w.batch),
        Some(&w.regulator.token),
        &json!({ "reason": "毒死蜱超标" }),
    );
    assert_eq!(s, 200, "{out}");
    let status = format!("/api/v1/public/batches/{}/recall-status", w.batch);
    assert_eq!(app.get(&status, None).1["recalled"], true);
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    assert!(
        verify_command(&app),
        "a recalled batch as recorded verifies"
    );

    // Someone with the database's rights erases the recall from the batch row; the chain is untouched.
    app.test_db.raw(&format!(
        "UPDATE batches SET status = 'open', status_reason = NULL WHERE id = {}",
        w.batch
    ));
    assert_eq!(app.get(&status, None).1["recalled"], false);
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    let found = mismatches(&report);
    assert!(
        found.contains(&(w.batch.0, "status".into(), "open".into(), "recalled".into())),
        "{:?}",
        report.issues
    );
    assert!(
        found
            .iter()
            .any(|m| m.1 == "status_reason" && m.3.contains("毒死蜱超标")),
        "{found:?}"
    );
    assert!(
        !verify_command(&app),
        "the command fails on the erased recall"
    );
    let json = serde_json::to_value(full_report(&app, Path::new("./unused"), Vec::new())).unwrap();
    assert_eq!(json["intact"], false);
    assert!(
        json["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["mismatch"]["column"] == "status" && i["mismatch"]["derived"] == "recalled"),
        "{json}"
    );
}

fn a_block_or_custody_changed_in_the_database_is_reported(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    assert_eq!(
        app.post(
            &format!("/api/v1/batches/{}/inspection-requests", w.batch),
            Some(&w.farmer.token),
            &json!({ "lab_org_id": w.lab }),
        )
        .0,
        204
    );
    let (s, r) = app.post(&path, Some(&w.inspector.token), &inspection(false));
    assert_eq!(s, 201, "{r}");
    let shipping = json!({
        "client_id": crate::support::cid(),
        "event_time": crate::support::days_ago(0),
        "details": { "kind": "shipping", "to_org_id": w.processor_org }
    });
    let (s, r) = app.post(&path, Some(&w.farmer.token), &shipping);
    assert_eq!(s, 201, "{r}");
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    assert!(report.issues.is_empty(), "{:?}", report.issues);

    // The block is lifted and the shipment forgotten in the row; the records still say otherwise.
    app.test_db.raw(&format!(
        "UPDATE batches SET status = 'open', status_reason = NULL, in_transit_to_org_id = NULL WHERE id = {}",
        w.batch
    ));
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    let found = mismatches(&report);
    let b = w.batch.0;
    assert!(
        found.contains(&(b, "status".into(), "open".into(), "blocked".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            b,
            "status_reason".into(),
            "none".into(),
            "inspection_failed".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            b,
            "in_transit_to_org_id".into(),
            "none".into(),
            w.processor_org.to_string()
        )),
        "{found:?}"
    );
    assert!(!verify_command(&app));

    // Put back as the records say, and the receipt moves custody: verified clean again.
    app.test_db.raw(&format!(
        "UPDATE batches SET status = 'blocked', status_reason = 'inspection_failed', in_transit_to_org_id = {} WHERE id = {}",
        w.processor_org, w.batch
    ));
    let receiving = json!({
        "client_id": crate::support::cid(),
        "event_time": crate::support::days_ago(0),
        "details": { "kind": "receiving" }
    });
    let (s, r) = app.post(&path, Some(&w.processor.token), &receiving);
    assert_eq!(s, 201, "{r}");
    assert!(verify_command(&app), "the row as the records say verifies");
    // A custodian changed behind the platform's back is named too.
    app.test_db.raw(&format!(
        "UPDATE batches SET custodian_org_id = {} WHERE id = {}",
        w.coop, w.batch
    ));
    let report = app.db.read(|c| verify::verify_chains(c, |_| {})).unwrap();
    assert_eq!(
        mismatches(&report),
        [(
            b,
            "custodian_org_id".into(),
            w.coop.to_string(),
            w.processor_org.to_string()
        )]
    );
}

/// A signing key, and an anchor made now: its file under the data folder.
fn anchor_now(app: &TestApp) -> PathBuf {
    let store = KeyStore::in_data_dir(app.data_dir.path());
    if app
        .db
        .read(suyuan_core::store::labels::active_key)
        .unwrap()
        .is_none()
    {
        keys_cmd::create_in(&app.db, &store, false).unwrap();
    }
    let settings = suyuan_server::minting::MintSettings {
        env_key: None,
        ..suyuan_server::minting::MintSettings::in_data_dir(app.data_dir.path())
    };
    let (_, _, path) = anchor::make(&app.db, &settings, None).unwrap().unwrap();
    path
}

/// Cuts the last record off `batch` and moves its head back, so that the chain is intact in itself.
fn truncate_tail(app: &TestApp, batch: i64) {
    around_the_guard(
        app,
        &format!("DELETE FROM records WHERE batch_id = {batch} AND seq = 3"),
    );
    app.test_db.raw(&format!(
        "UPDATE batches SET record_count = 2, head_hash = (SELECT hash FROM records WHERE batch_id = {batch} AND seq = 2) WHERE id = {batch}"
    ));
}

fn a_truncated_tail_is_caught_by_an_anchor_kept_elsewhere(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    for body in [note("一"), note("二"), note("三")] {
        assert_eq!(app.post(&path, Some(&w.farmer.token), &body).0, 201);
    }
    let file = anchor_now(&app);
    // Published for anyone to keep.
    let (s, latest) = app.get("/.well-known/suyuan/anchors/latest.json", None);
    assert_eq!(s, 200);
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(latest, on_disk);
    let (_, list) = app.get("/.well-known/suyuan/anchors", None);
    let url = list["anchors"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&url, None).1, latest);
    let elsewhere = tempfile::tempdir().unwrap();
    let kept = elsewhere.path().join("anchor.json");
    std::fs::copy(&file, &kept).unwrap();
    let data = app.data_dir.path();
    let clean = full_report(&app, data, vec![kept.clone()]);
    assert!(clean.intact, "{clean:?}");
    assert_eq!(clean.anchors[0].signature, "valid");

    // The last record is cut off and the head moved back; the anchors the database and the data folder
    // hold are deleted too. The chain alone cannot tell: what is left is intact in itself.
    truncate_tail(&app, w.batch.0);
    app.test_db.raw("DELETE FROM chain_anchors");
    std::fs::remove_dir_all(anchor::anchor_dir(data)).unwrap();
    let blind = full_report(&app, data, Vec::new());
    assert!(
        blind.intact && blind.anchors.is_empty(),
        "without an anchor a truncated tail is not detectable: {blind:?}"
    );
    assert!(verify_command(&app));

    // The copy kept elsewhere shows it.
    let caught = full_report(&app, data, vec![kept.clone()]);
    assert!(!caught.intact);
    let issue = caught
        .chains
        .issues
        .iter()
        .find(|i| i.batch_id == w.batch.0)
        .expect("the truncated batch is named");
    assert!(issue.problem.contains("cut off"), "{issue:?}");
    let args = chain_args(&app, data, vec![kept]);
    assert!(!suyuan_server::commands::verify::run(VerifyCommand::Chain(args)).unwrap());

    // Rewriting the tail (a different third record in place of the anchored one) is caught as well.
    let rewritten = note("另一个三");
    assert_eq!(app.post(&path, Some(&w.farmer.token), &rewritten).0, 201);
    let kept = elsewhere.path().join("anchor.json");
    let caught = full_report(&app, data, vec![kept]);
    let issue = caught
        .chains
        .issues
        .iter()
        .find(|i| i.batch_id == w.batch.0)
        .expect("the rewritten batch is named");
    assert!(issue.problem.contains("rewritten"), "{issue:?}");
}

fn a_forged_anchor_is_reported(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    for body in [note("一"), note("二"), note("三")] {
        assert_eq!(app.post(&path, Some(&w.farmer.token), &body).0, 201);
    }
    let file = anchor_now(&app);
    truncate_tail(&app, w.batch.0);
    // Whoever truncated the chain edits the anchor to match, digest and counts included, but cannot sign.
    let mut doc: suyuan_core::store::anchors::AnchorDocument =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let head: (i64, String) = app
        .db
        .read(|c| suyuan_core::store::batches::get(c, w.batch))
        .map(|b| (b.record_count, b.head_hash))
        .unwrap();
    for h in &mut doc.heads {
        if h.0 == w.batch.0 {
            (h.1, h.2) = head.clone();
        }
    }
    doc.records -= 1;
    doc.digest = suyuan_core::store::anchors::digest(&doc.heads);
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    app.test_db.raw("DELETE FROM chain_anchors");
    let report = full_report(&app, app.data_dir.path(), Vec::new());
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.anchors.len(), 1);
    assert_eq!(report.anchors[0].signature, "invalid_signature");
    assert!(
        report.anchors[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("forged"),
        "{report:?}"
    );
    let args = chain_args(&app, app.data_dir.path(), Vec::new());
    assert!(!suyuan_server::commands::verify::run(VerifyCommand::Chain(args)).unwrap());
}

fn replicas_make_one_anchor_per_interval(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    assert_eq!(app.post(&path, Some(&w.farmer.token), &note("一")).0, 201);
    keys_cmd::create_in(&app.db, &KeyStore::in_data_dir(app.data_dir.path()), false).unwrap();
    let settings = suyuan_server::minting::MintSettings {
        env_key: None,
        ..suyuan_server::minting::MintSettings::in_data_dir(app.data_dir.path())
    };
    // Four replicas' timers fire at once, each with its own connection: one anchor is made.
    let made: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (db, settings) = (app.db.clone(), settings.clone());
                scope.spawn(move || {
                    anchor::make(&db, &settings, Some(std::time::Duration::from_secs(3600)))
                        .unwrap()
                        .is_some()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
    let (_, list) = app.get("/.well-known/suyuan/anchors", None);
    assert_eq!(list["anchors"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["anchors"][0]["batches"], 1);
    assert_eq!(list["anchors"][0]["records"], 1);
    // Due again but nothing written since: the periodic anchor is skipped; after a record it is made.
    assert!(
        anchor::make(&app.db, &settings, Some(std::time::Duration::ZERO))
            .unwrap()
            .is_none()
    );
    assert_eq!(app.post(&path, Some(&w.farmer.token), &note("二")).0, 201);
    assert!(
        anchor::make(&app.db, &settings, Some(std::time::Duration::ZERO))
            .unwrap()
            .is_some()
    );
    // Asked for now (`suyuan anchor`), one is made regardless of the interval.
    assert!(anchor::make(&app.db, &settings, None).unwrap().is_some());
    let report = full_report(&app, app.data_dir.path(), Vec::new());
    assert!(report.intact, "{report:?}");
    // Three in the database and three files (latest.json is not read): each checked once.
    assert_eq!(report.anchors.len(), 3, "{:?}", report.anchors);
}
