//! The hash chain: records cannot be updated or deleted through SQL, and a change made around that (by
//! someone with the database's admin rights) is caught by `suyuan verify chain`.

use suyuan_core::store::verify;
use suyuan_server::commands::verify::{ChainArgs, VerifyCommand};
use suyuan_server::commands::DataArgs;

use crate::support::world::{note, spraying};
use crate::support::{Backend, TestApp, World};

crate::both_backends!(records_are_append_only_and_tampering_is_detected);

fn verify_command(app: &TestApp) -> bool {
    let url = match &app.test_db.url {
        suyuan_core::db::DatabaseUrl::Postgres(u) => u.clone(),
        suyuan_core::db::DatabaseUrl::Sqlite { path, .. } => path.to_string_lossy().into_owned(),
    };
    let args = ChainArgs {
        data: DataArgs {
            data_dir: "./unused".into(),
            database_url: Some(url),
            media_dir: None,
        },
        json: false,
    };
    suyuan_server::commands::verify::run(VerifyCommand::Chain(args)).expect("verify runs")
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
    assert!(app
        .test_db
        .try_raw("DELETE FROM records WHERE seq = 3")
        .is_err());

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
