//! Migrations run up, down and up again on both backends, and leave the tables the diesel schema expects.

use suyuan_core::db::{revert_all_migrations, run_migrations};

use crate::support::{Backend, TestDb};

fn up_down_up(backend: Backend) {
    let Some(test_db) = TestDb::new(backend) else {
        return;
    };
    let db = test_db.open(); // runs the migrations (up)
    let mut conn = db.conn().unwrap();
    let counts = suyuan_core::store::verify::table_counts(&mut conn)
        .expect("every table of the schema exists");
    assert_eq!(counts.len(), 30);
    suyuan_core::store::verify::check_schema(&mut conn)
        .expect("migrated tables have every column of schema.rs");
    let reverted = revert_all_migrations(&mut conn).expect("down");
    assert!(!reverted.is_empty());
    let gone =
        suyuan_core::store::verify::table_counts(&mut conn).expect_err("down removed the tables");
    let no_such_table = match backend {
        Backend::Sqlite => "no such table",
        Backend::Postgres => "does not exist",
    };
    assert!(
        matches!(gone, suyuan_core::CoreError::Database(_))
            && gone.to_string().contains(no_such_table),
        "down removed the tables, so counting them fails for that reason: {gone}"
    );
    let applied = run_migrations(&mut conn).expect("up again");
    assert_eq!(applied, reverted.into_iter().rev().collect::<Vec<_>>());
    suyuan_core::store::verify::check_schema(&mut conn).expect("schema after up-down-up");
    assert!(run_migrations(&mut conn).expect("idempotent").is_empty());
}

#[test]
fn migrations_up_down_up_sqlite() {
    up_down_up(Backend::Sqlite);
}

#[test]
fn migrations_up_down_up_postgres() {
    up_down_up(Backend::Postgres);
}

#[test]
fn both_backends_have_the_same_migrations() {
    let list = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(format!(
            "{}/../migrations/{dir}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
        names.sort();
        names
    };
    assert_eq!(list("sqlite"), list("postgres"));
}

#[test]
fn a_bare_path_never_becomes_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.sqlite");
    let err = suyuan_core::db::DatabaseUrl::parse(&missing.to_string_lossy()).unwrap_err();
    assert!(err.to_string().contains("sqlite://"), "{err}");
    assert!(!missing.exists());
    let created =
        suyuan_core::db::DatabaseUrl::parse(&format!("sqlite://{}", missing.display())).unwrap();
    suyuan_core::Database::open(&created, &Default::default()).unwrap();
    assert!(missing.exists());
    // Now that it exists, the bare path is accepted.
    assert!(suyuan_core::db::DatabaseUrl::parse(&missing.to_string_lossy()).is_ok());
}
