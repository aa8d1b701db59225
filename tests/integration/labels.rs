//! Labels: serial ranges reserved without overlap by concurrent runs, binding ranges and single labels to
//! a batch (and the refusals), voiding, the verification endpoint's verdicts, the public keys document,
//! and the `keys` / `labels mint` commands end to end.
//!
//! The two public endpoints are served here by a small server of their own over the test's database
//! (see [`LabelRoutes`]), so these tests do not depend on where `routes.rs` registers them.

use std::net::TcpListener;
use std::sync::mpsc;

use actix_web::ResponseError;
use serde_json::{json, Value};
use suyuan_core::model::{
    Actor, LabelRef, LabelRun, LabelState, NewBatch, NewLabelRun, RunRequester,
};
use suyuan_core::store::{batches, labels};
use suyuan_core::{BatchId, CoreError, Database, ProductId};
use suyuan_label_gen::keystore::hex;
use suyuan_label_gen::{KeyId, LabelCode, LabelSerial, LabelSigningKey, PublicKeysDocument};
use suyuan_server::commands::{keys as keys_cmd, labels as labels_cmd, DataArgs};

use crate::support::{encode, Backend, TestApp, World};

crate::both_backends!(
    concurrent_reservations_are_disjoint,
    bind_ranges_and_single_labels_then_void,
    blocked_or_recalled_batches_refuse_activation,
    verify_endpoint_gives_each_verdict,
    keys_document_lists_every_key,
    keys_and_mint_commands,
);

fn key_id(n: u32) -> KeyId {
    KeyId::new(n).unwrap()
}

/// A fresh key registered in the database.
fn register(db: &Database, id: u32) -> LabelSigningKey {
    let key = LabelSigningKey::generate(key_id(id));
    let public = hex(&key.verifying_key().to_bytes());
    db.write(|c| labels::register_key(c, i64::from(id), &public))
        .unwrap();
    key
}

/// A finished run of `count` labels of `product` under key `id`, as the command line records it.
fn finished_run(db: &Database, id: u32, product: ProductId, count: i64) -> LabelRun {
    let run = db
        .write(|c| {
            labels::create_run(
                c,
                RunRequester::CommandLine,
                &NewLabelRun {
                    product_id: product,
                    key_id: i64::from(id),
                    count,
                    layout: "roll-50x30".into(),
                    host: "t.cn".into(),
                },
            )
        })
        .unwrap();
    db.write(|c| labels::finish_run(c, run.id, "run.pdf"))
        .unwrap()
}

fn label(run: &LabelRun, offset: i64) -> LabelRef {
    LabelRef {
        key_id: run.key_id,
        sequence: run.first_sequence + offset,
    }
}

fn code(key: &LabelSigningKey, sequence: i64) -> LabelCode {
    let serial = LabelSerial::new(key.id(), u64::try_from(sequence).unwrap()).unwrap();
    LabelCode::mint(key, serial).unwrap()
}

fn bind(
    db: &Database,
    actor: &Actor,
    first: LabelRef,
    last: LabelRef,
    batch: BatchId,
) -> Result<suyuan_core::model::LabelActivation, CoreError> {
    db.write(|c| labels::bind(c, actor, first, last, batch))
}

/// The HTTP status the API answers a domain error with.
fn status(e: CoreError) -> u16 {
    suyuan_server::error::ApiError::Core(e)
        .status_code()
        .as_u16()
}

fn expect_err(r: Result<impl std::fmt::Debug, CoreError>, code: &str, http: u16) -> String {
    let e = r.expect_err("refused");
    assert_eq!(e.code(), code, "{e}");
    let message = e.to_string();
    assert_eq!(status(e), http, "{message}");
    message
}

fn fresh_batch(db: &Database, w: &World, lot: &str) -> BatchId {
    db.write(|c| {
        batches::create(
            c,
            &w.farmer.actor,
            &NewBatch {
                product_id: w.citrus,
                lot_code: lot.into(),
                quantity: 100.0,
                unit: "kg".into(),
                origin_site_id: None,
            },
        )
    })
    .unwrap()
    .id
}

fn concurrent_reservations_are_disjoint(app: TestApp) {
    let w = World::build(&app);
    register(&app.db, 1);
    // On PostgreSQL the second minter is another pool (as another replica would be); on SQLite both go
    // through the one writer, as two requests of one server do.
    let other = match app.test_db.backend {
        Backend::Postgres => app.test_db.open(),
        Backend::Sqlite => app.db.clone(),
    };
    let barrier = std::sync::Barrier::new(2);
    let ranges: Vec<(i64, i64)> = std::thread::scope(|s| {
        let handles: Vec<_> = [app.db.clone(), other]
            .into_iter()
            .enumerate()
            .map(|(t, db)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    (0..20)
                        .map(|i| {
                            let count = 100 + 37 * i + t as i64;
                            let run = db
                                .write(|c| {
                                    labels::create_run(
                                        c,
                                        RunRequester::CommandLine,
                                        &NewLabelRun {
                                            product_id: w.citrus,
                                            key_id: 1,
                                            count,
                                            layout: "a4-4x10".into(),
                                            host: "t.cn".into(),
                                        },
                                    )
                                })
                                .unwrap();
                            assert_eq!(run.count, count);
                            (run.first_sequence, run.count)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut sorted = ranges.clone();
    sorted.sort();
    assert_eq!(sorted[0].0, 1, "the first range starts at sequence 1");
    for pair in sorted.windows(2) {
        assert_eq!(
            pair[0].0 + pair[0].1,
            pair[1].0,
            "ranges are disjoint and leave no gap: {pair:?}"
        );
    }
    let total: i64 = sorted.iter().map(|r| r.1).sum();
    let key = app.db.read(labels::active_key).unwrap().unwrap();
    assert_eq!(key.next_sequence, 1 + total);
}

fn bind_ranges_and_single_labels_then_void(app: TestApp) {
    let w = World::build(&app);
    let db = &app.db;
    register(db, 1);
    let run = finished_run(db, 1, w.citrus, 100);
    let farmer = &w.farmer.actor;

    // A range (first and last label of a roll) and a single label.
    let range = bind(db, farmer, label(&run, 0), label(&run, 9), w.batch).unwrap();
    assert_eq!(
        (range.first_sequence, range.last_sequence),
        (run.first_sequence, run.first_sequence + 9)
    );
    assert_eq!(range.activated_by, farmer.user_id);
    bind(db, farmer, label(&run, 10), label(&run, 10), w.batch).unwrap();
    for offset in [0, 5, 9, 10] {
        let found = db.read(|c| labels::lookup(c, label(&run, offset))).unwrap();
        assert_eq!(found.state, LabelState::Active, "offset {offset}");
        assert_eq!(found.batch_id, Some(w.batch));
        assert_eq!(found.run_id, Some(run.id));
        assert_eq!(found.product_id, Some(w.citrus));
    }
    let unbound = db.read(|c| labels::lookup(c, label(&run, 11))).unwrap();
    assert_eq!(unbound.state, LabelState::Minted);
    assert_eq!(unbound.batch_id, None);

    // Overlaps, ranges that leave the run, labels never minted.
    let before = app.counts();
    let msg = expect_err(
        bind(db, farmer, label(&run, 5), label(&run, 15), w.batch),
        "label_already_active",
        409,
    );
    assert!(msg.contains(&w.batch.to_string()), "{msg}");
    expect_err(
        bind(db, farmer, label(&run, 90), label(&run, 100), w.batch),
        "range_spans_runs",
        422,
    );
    expect_err(
        bind(db, farmer, label(&run, 100), label(&run, 100), w.batch),
        "not_found",
        404,
    );
    expect_err(
        bind(db, farmer, label(&run, 20), label(&run, 19), w.batch),
        "invalid_range",
        422,
    );
    // Who: another cooperative cannot see the run; a regulator reads but does not bind.
    expect_err(
        bind(
            db,
            &w.other_farmer.actor,
            label(&run, 20),
            label(&run, 29),
            w.batch,
        ),
        "not_found",
        404,
    );
    expect_err(
        bind(
            db,
            &w.regulator.actor,
            label(&run, 20),
            label(&run, 29),
            w.batch,
        ),
        "forbidden",
        403,
    );
    assert_eq!(app.counts(), before, "refusals change nothing");
    assert!(db
        .read(|c| labels::get_run_for(c, &w.regulator.actor, run.id))
        .is_ok());
    expect_err(
        db.read(|c| labels::get_run_for(c, &w.other_farmer.actor, run.id)),
        "not_found",
        404,
    );

    // Void: an active label and an unbound one; twice is refused; a void label cannot be bound.
    let voided = db
        .write(|c| labels::void(c, farmer, label(&run, 3), "标签破损"))
        .unwrap();
    assert_eq!(voided.voided_by, farmer.user_id);
    db.write(|c| labels::void(c, farmer, label(&run, 50), "印刷错误"))
        .unwrap();
    let found = db.read(|c| labels::lookup(c, label(&run, 3))).unwrap();
    assert_eq!(found.state, LabelState::Void);
    assert_eq!(found.void_reason.as_deref(), Some("标签破损"));
    assert_eq!(
        db.read(|c| labels::lookup(c, label(&run, 50)))
            .unwrap()
            .state,
        LabelState::Void
    );
    expect_err(
        db.write(|c| labels::void(c, farmer, label(&run, 3), "again")),
        "label_already_void",
        409,
    );
    expect_err(
        db.write(|c| labels::void(c, farmer, label(&run, 4), "  ")),
        "missing_reason",
        422,
    );
    expect_err(
        db.write(|c| labels::void(c, &w.other_farmer.actor, label(&run, 4), "x")),
        "not_found",
        404,
    );
    expect_err(
        bind(db, farmer, label(&run, 40), label(&run, 60), w.batch),
        "label_void",
        409,
    );
    bind(db, farmer, label(&run, 51), label(&run, 99), w.batch).unwrap();

    // The record of who did what, when.
    let acts = db
        .read(|c| labels::activations_for(c, &w.regulator.actor, run.id))
        .unwrap();
    assert_eq!(acts.len(), 3);
    assert!(acts.iter().all(|a| a.activated_by == farmer.user_id));
    let voids = db
        .read(|c| labels::voids_for(c, &w.regulator.actor, run.id))
        .unwrap();
    assert_eq!(voids.len(), 2);
}

fn blocked_or_recalled_batches_refuse_activation(app: TestApp) {
    let w = World::build(&app);
    let db = &app.db;
    register(db, 1);
    let run = finished_run(db, 1, w.citrus, 20);
    let farmer = &w.farmer.actor;

    let blocked = fresh_batch(db, &w, "QL-BLOCKED");
    app.test_db.raw(&format!(
        "UPDATE batches SET status = 'blocked', status_reason = '农残速测不合格' WHERE id = {blocked}"
    ));
    let msg = expect_err(
        bind(db, farmer, label(&run, 0), label(&run, 4), blocked),
        "batch_blocked",
        409,
    );
    assert!(msg.contains("农残速测不合格"), "{msg}");

    let recalled = fresh_batch(db, &w, "QL-RECALLED");
    let (code, body) = app.post(
        &format!("/api/v1/batches/{recalled}/recall"),
        Some(&w.farmer.token),
        &json!({"reason": "检出禁用农药"}),
    );
    assert_eq!(code, 200, "{body}");
    let msg = expect_err(
        bind(db, farmer, label(&run, 0), label(&run, 0), recalled),
        "batch_recalled",
        409,
    );
    assert!(msg.contains("检出禁用农药"), "{msg}");

    // Nothing was bound; an open batch of the product still takes the labels.
    assert_eq!(
        db.read(|c| labels::lookup(c, label(&run, 0)))
            .unwrap()
            .state,
        LabelState::Minted
    );
    bind(db, farmer, label(&run, 0), label(&run, 4), w.batch).unwrap();
    // Labels of another product of the cooperative do not fit this batch.
    let gift_box = db
        .write(|c| {
            suyuan_core::store::sites::create_product(
                c,
                w.coop,
                &suyuan_core::model::NewProduct {
                    name: "华宁柑橘礼盒".into(),
                    category: "水果".into(),
                    brand: None,
                    certifications: vec![],
                    gtin: None,
                    label_fields: suyuan_core::model::LabelField::DEFAULT.to_vec(),
                    distribution_area: vec![],
                },
            )
        })
        .unwrap()
        .id;
    let box_run = finished_run(db, 1, gift_box, 5);
    expect_err(
        bind(db, farmer, label(&box_run, 0), label(&box_run, 4), w.batch),
        "product_mismatch",
        422,
    );
}

/// The label endpoints on a server of their own over `db`.
struct LabelRoutes {
    base: String,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LabelRoutes {
    fn start(db: &Database) -> LabelRoutes {
        use suyuan_server::api::labels;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let data =
            actix_web::web::Data::new(suyuan_server::AppState::new(db.clone()).expect("app state"));
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(data.clone())
                        .app_data(
                            actix_web::web::QueryConfig::default()
                                .error_handler(suyuan_server::error::query_error),
                        )
                        .service(actix_web::web::scope("/api/v1").service(labels::verify::verify))
                        .service(labels::keys::keys)
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        let handle = rx.recv().unwrap();
        LabelRoutes {
            base,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    fn get(&self, path_and_query: &str) -> (u16, Value) {
        let res = ureq::get(&format!("{}{}", self.base, path_and_query)).call();
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = resp.status();
        (status, resp.into_json().unwrap_or(Value::Null))
    }

    fn verify(&self, code: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/labels/verify?code={}", encode(code)));
        assert_eq!(status, 200, "{code}: {body}");
        body
    }
}

impl Drop for LabelRoutes {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn verify_endpoint_gives_each_verdict(app: TestApp) {
    let w = World::build(&app);
    let db = &app.db;
    let key = register(db, 1);
    let run = finished_run(db, 1, w.citrus, 50);
    bind(db, &w.farmer.actor, label(&run, 0), label(&run, 9), w.batch).unwrap();
    db.write(|c| labels::void(c, &w.farmer.actor, label(&run, 20), "标签破损"))
        .unwrap();
    let routes = LabelRoutes::start(db);

    // Genuine and active, in lower and upper case, as URL, path and digits.
    let active = code(&key, run.first_sequence);
    let url = active.to_url("trace.example.cn");
    let digits = active.digits().to_string();
    for input in [
        url.clone(),
        url.to_uppercase(),
        format!("/{digits}"),
        digits.clone(),
        format!("{url}?from=singlemessage"),
    ] {
        let body = routes.verify(&input);
        assert_eq!(body["verdict"], "genuine", "{input}: {body}");
        assert_eq!(body["state"], "active");
        assert_eq!(body["batch_id"], json!(w.batch));
        assert_eq!(body["batch_status"], "open");
        assert_eq!(body["product_id"], json!(w.citrus));
        assert_eq!(body["serial"], active.serial().to_string());
        assert_eq!(body["short_code"], active.serial().grouped());
        assert_eq!(body["key_id"], 1);
    }
    // Genuine but not yet activated; void; signed but never minted.
    let body = routes.verify(&code(&key, run.first_sequence + 15).to_url("t.cn"));
    assert_eq!(
        (&body["verdict"], &body["state"]),
        (&json!("genuine"), &json!("minted"))
    );
    assert!(body.get("batch_id").is_none(), "{body}");
    let body = routes.verify(&code(&key, run.first_sequence + 20).to_url("t.cn"));
    assert_eq!(
        (&body["verdict"], &body["state"]),
        (&json!("genuine"), &json!("void"))
    );
    assert_eq!(body["reason"], "标签破损");
    let body = routes.verify(&code(&key, run.last_sequence() + 1000).to_url("t.cn"));
    assert_eq!(
        (&body["verdict"], &body["state"]),
        (&json!("genuine"), &json!("not_minted"))
    );

    // One digit changed: in the signature it is invalid, in the serial the check digit catches it.
    let mut changed = digits.clone().into_bytes();
    let pos = 13 + 17 + 8; // inside the second signature chunk: stays a valid chunk
    changed[pos] = if changed[pos] == b'9' {
        b'8'
    } else {
        changed[pos] + 1
    };
    let changed = String::from_utf8(changed).unwrap();
    let body = routes.verify(&changed);
    assert_eq!(body["verdict"], "invalid_signature", "{body}");
    assert_eq!(body["serial"], active.serial().to_string());
    assert!(
        body.get("state").is_none(),
        "no state for a forgery: {body}"
    );
    let mut serial_changed = digits.clone().into_bytes();
    serial_changed[7] = if serial_changed[7] == b'9' {
        b'0'
    } else {
        serial_changed[7] + 1
    };
    let body = routes.verify(std::str::from_utf8(&serial_changed).unwrap());
    assert_eq!(body["verdict"], "malformed", "{body}");

    // Another key: the same id with another secret is invalid; an id the platform never had is unknown.
    let impostor = LabelSigningKey::generate(key_id(1));
    let body = routes.verify(&code(&impostor, run.first_sequence).to_url("t.cn"));
    assert_eq!(body["verdict"], "invalid_signature", "{body}");
    let stranger = LabelSigningKey::generate(key_id(42));
    let body = routes.verify(&code(&stranger, 1).to_url("t.cn"));
    assert_eq!(body["verdict"], "unknown_key", "{body}");
    assert_eq!(body["key_id"], 42);

    // Truncated, garbage.
    for input in [
        url[..url.len() - 1].to_owned(),
        digits[..100].to_owned(),
        "hello".into(),
        "https://t.cn/".into(),
        "💥".into(),
        "9".repeat(169),
        "ftp://t.cn/123".into(),
    ] {
        let body = routes.verify(&input);
        assert_eq!(body["verdict"], "malformed", "{input}: {body}");
        assert!(
            body["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{body}"
        );
        assert!(body.get("state").is_none());
    }
    let (status, body) = routes.get("/api/v1/labels/verify");
    assert_eq!(status, 400, "{body}");
}

fn keys_document_lists_every_key(app: TestApp) {
    let w = World::build(&app);
    let db = &app.db;
    let old = register(db, 1);
    let run = finished_run(db, 1, w.citrus, 5);
    let new = register(db, 2);
    db.write(|c| labels::retire_other_keys(c, 2)).unwrap();
    assert_eq!(db.read(labels::active_key).unwrap().unwrap().key_id, 2);
    // A retired key mints no more.
    let refused = db.write(|c| {
        labels::create_run(
            c,
            RunRequester::CommandLine,
            &NewLabelRun {
                product_id: w.citrus,
                key_id: 1,
                count: 5,
                layout: "a4-3x8".into(),
                host: "t.cn".into(),
            },
        )
    });
    expect_err(refused, "key_not_active", 422);

    let routes = LabelRoutes::start(db);
    let (status, body) = routes.get("/.well-known/suyuan/keys.json");
    assert_eq!(status, 200, "{body}");
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{body}");
    assert_eq!(keys[0]["key_id"], 1);
    assert_eq!(keys[0]["algorithm"], "Ed25519");
    assert_eq!(keys[0]["public_key"], hex(&old.verifying_key().to_bytes()));
    assert!(keys[0]["created_at"].as_str().is_some());
    assert!(keys[0]["retired_at"].as_str().is_some(), "{body}");
    assert_eq!(keys[1]["key_id"], 2);
    assert_eq!(keys[1]["public_key"], hex(&new.verifying_key().to_bytes()));
    assert_eq!(keys[1]["retired_at"], Value::Null);
    let text = body.to_string();
    assert!(!text.contains(&hex(&old.to_secret_bytes())));
    assert!(!text.contains(&hex(&new.to_secret_bytes())));

    // An offline verifier with only this document: old labels still verify after the rotation.
    let set = PublicKeysDocument::from_json(&text)
        .unwrap()
        .verifying_keys()
        .unwrap();
    let old_label = code(&old, run.first_sequence).to_url("t.cn");
    assert!(matches!(
        suyuan_label_gen::verify(&old_label, &set),
        suyuan_label_gen::Verdict::Genuine { .. }
    ));
    assert_eq!(routes.verify(&old_label)["verdict"], "genuine");
}

fn data_args(app: &TestApp, dir: &std::path::Path) -> DataArgs {
    DataArgs {
        data_dir: dir.to_owned(),
        database_url: Some(match &app.test_db.url {
            suyuan_core::db::DatabaseUrl::Sqlite { path, .. } => {
                format!("sqlite://{}", path.display())
            }
            suyuan_core::db::DatabaseUrl::Postgres(url) => url.clone(),
        }),
        media_dir: None,
    }
}

fn keys_and_mint_commands(app: TestApp) {
    use std::os::unix::fs::PermissionsExt;

    let w = World::build(&app);
    let dir = tempfile::tempdir().unwrap();
    let data = data_args(&app, dir.path());

    keys_cmd::run(keys_cmd::KeysCommand::New(keys_cmd::KeysArgs {
        data: data.clone(),
    }))
    .unwrap();
    let file = dir.path().join("keys").join("01.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only key file");
    // A second `new` would leave two keys minting: refused, and no file is left behind.
    let again = keys_cmd::run(keys_cmd::KeysCommand::New(keys_cmd::KeysArgs {
        data: data.clone(),
    }));
    assert!(again.unwrap_err().to_string().contains("rotate"));
    assert!(!dir.path().join("keys").join("02.key").exists());
    keys_cmd::run(keys_cmd::KeysCommand::Rotate(keys_cmd::KeysArgs {
        data: data.clone(),
    }))
    .unwrap();
    let keys = app.db.read(labels::list_keys).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].retired_at.is_some() && keys[1].retired_at.is_none());
    keys_cmd::run(keys_cmd::KeysCommand::List(keys_cmd::KeysArgs {
        data: data.clone(),
    }))
    .unwrap();
    let exported = dir.path().join("keys.json");
    keys_cmd::run(keys_cmd::KeysCommand::ExportPublic(keys_cmd::ExportArgs {
        data: data.clone(),
        out: Some(exported.clone()),
    }))
    .unwrap();
    let document = std::fs::read_to_string(&exported).unwrap();
    let set = PublicKeysDocument::from_json(&document)
        .unwrap()
        .verifying_keys()
        .unwrap();
    assert_eq!(set.len(), 2);
    for id in ["01", "02"] {
        let secret =
            std::fs::read_to_string(dir.path().join("keys").join(format!("{id}.key"))).unwrap();
        assert!(
            !document.contains(secret.trim()),
            "no secret in the public document"
        );
    }

    let args = labels_cmd::MintArgs {
        product: w.citrus.0,
        count: 30,
        layout: "roll-50x30".into(),
        out: dir.path().join("out"),
        host: "t.cn".into(),
        font: None,
        labels_per_file: 10,
        // Printer calibration: a printer that feeds 1.5 mm to the left and 1 mm low.
        offset_x_mm: 1.5,
        offset_y_mm: -1.0,
        margin_mm: None,
        data: data.clone(),
    };
    let db = data.open().unwrap();
    let off_the_page = labels_cmd::MintArgs {
        offset_x_mm: 50.0,
        ..args.clone()
    };
    let refused = labels_cmd::mint(&db, &off_the_page, None, &|_| ()).unwrap_err();
    assert!(format!("{refused:#}").contains("offset x"), "{refused:#}");
    let (run, report) = labels_cmd::mint(&db, &args, None, &|_| ()).unwrap();
    assert_eq!(run.key_id, 2, "the active key mints");
    assert_eq!(run.status, suyuan_core::model::LabelRunStatus::Finished);
    assert_eq!(report.files.len(), 3);
    assert!(report.files.iter().all(|f| f.is_file()));
    let manifest = std::fs::read_to_string(report.manifest.as_ref().unwrap()).unwrap();
    let rows: Vec<&str> = manifest.lines().skip(1).collect();
    assert_eq!(rows.len(), 30);
    for (i, row) in rows.iter().enumerate() {
        let url = row.split(',').nth(2).unwrap();
        match suyuan_label_gen::verify(url, &set) {
            suyuan_label_gen::Verdict::Genuine { serial, .. } => {
                assert_eq!(serial.sequence() as i64, run.first_sequence + i as i64)
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(
        app.db
            .read(|c| labels::lookup(c, label(&run, 29)))
            .unwrap()
            .state,
        LabelState::Minted
    );
    // The files are recorded on the run.
    let stored = app.db.read(|c| labels::get_run(c, run.id)).unwrap();
    assert!(stored.output.unwrap().contains("run-"));

    // A key file others may read is refused with a clear message, before any range is reserved.
    std::fs::set_permissions(
        dir.path().join("keys").join("02.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let before = app.counts();
    let err = labels_cmd::mint(&db, &args, None, &|_| ()).unwrap_err();
    assert!(
        err.to_string().contains("readable by group or others"),
        "{err}"
    );
    assert_eq!(app.counts(), before);

    // The key may come from the environment instead (here: the one from the file).
    let secret = std::fs::read_to_string(dir.path().join("keys").join("02.key")).unwrap();
    let env = format!("2:{}", secret.trim());
    let (run2, _) = labels_cmd::mint(&db, &args, Some(&env), &|_| ()).unwrap();
    assert_eq!(run2.first_sequence, run.last_sequence() + 1);
    // A wrong key for the active id is refused.
    let wrong = format!("2:{}", "ab".repeat(32));
    let err = labels_cmd::mint(&db, &args, Some(&wrong), &|_| ()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(!err.to_string().contains(&"ab".repeat(32)));
}
