//! What a record may name and hold: only its writer's sites and images (and the public page shows no other),
//! client ids of its own organisation, texts and numbers within bounds; and a batch's records a page at a time.

use serde_json::{json, Value};
use suyuan_core::model::*;
use suyuan_core::store::{batches, sites};
use suyuan_core::SiteId;

use crate::support::world::{note, spraying};
use crate::support::{cid, days_ago, TestApp, World};

crate::both_backends!(
    records_name_only_their_writers_sites,
    records_attach_only_their_writers_images,
    public_page_shows_no_foreign_plot_or_photos,
    client_ids_belong_to_their_organisation,
    free_text_and_numbers_are_bounded,
    record_list_pages_through_a_batch,
    client_ids_per_org_migration_keeps_every_row,
);

fn records_path(batch: impl std::fmt::Display) -> String {
    format!("/api/v1/batches/{batch}/records")
}

/// A plot of the other cooperative.
fn foreign_plot(app: &TestApp, w: &World) -> SiteId {
    app.db
        .write(|c| {
            sites::create_site(
                c,
                w.other_coop,
                &NewSite {
                    name: "盘溪2号地块".into(),
                    kind: SiteKind::Plot,
                    division_code: "530424".into(),
                    address: None,
                    latitude: None,
                    longitude: None,
                    area_mu: None,
                },
            )
        })
        .unwrap()
        .id
}

/// A camera at `site` (of `org`) and one image it took `days` ago, with the given ids.
fn camera_image(app: &TestApp, org: i64, site: SiteId, device: i64, image: i64, days: i64) {
    let taken = chrono::Utc::now().timestamp_millis() - days * 86_400_000;
    app.test_db.raw(&format!(
        "INSERT INTO devices (id, org_id, site_id, client_id, kind, name, password_hash, enabled, status, \
         created_by, created_at) VALUES ({device}, {org}, {site}, 'cam-{device}', 'camera', '摄像头', 'x', TRUE, \
         'online', 1, {taken});
         INSERT INTO device_images (id, device_id, site_id, taken_at, sha256, bytes, width, height, path, \
         thumb_path, received_at) VALUES ({image}, {device}, {site}, {taken}, 'sha-{image}', 1000, 640, 480, \
         'img/{image}.jpg', 'img/{image}.thumb.jpg', {taken});",
        site = site.0
    ));
}

fn with_site(mut body: Value, site: SiteId) -> Value {
    body["site_id"] = json!(site.0);
    body
}

fn records_name_only_their_writers_sites(app: TestApp) {
    let w = World::build(&app);
    let theirs = foreign_plot(&app, &w);
    let path = records_path(w.batch);
    let before = app.counts();
    let (s, err) = app.post(
        &path,
        Some(&w.farmer.token),
        &with_site(note("在别人的地块"), theirs),
    );
    assert_eq!(
        (s, err["error"].as_str()),
        (422, Some("foreign_site")),
        "{err}"
    );
    assert!(
        err["message"].as_str().unwrap().contains("site_id"),
        "{err}"
    );
    let (s, err) = app.post(
        &path,
        Some(&w.farmer.token),
        &with_site(note("不存在的地块"), SiteId(987_654)),
    );
    assert_eq!(
        (s, err["error"].as_str()),
        (404, Some("not_found")),
        "{err}"
    );
    assert_eq!(app.counts(), before, "a refused record stores nothing");
    let (s, ok) = app.post(
        &path,
        Some(&w.farmer.token),
        &with_site(note("自己的地块"), w.plot),
    );
    assert_eq!(s, 201, "{ok}");

    // The sync path refuses alike, item by item.
    let items = json!([
        { "batch_id": w.batch, "record": with_site(spraying(3, 7), theirs) },
        { "batch_id": w.batch, "record": with_site(note("同步·自己的"), w.plot) },
    ]);
    let (s, out) = app.post("/api/v1/records/sync", Some(&w.farmer.token), &items);
    assert_eq!(s, 200, "{out}");
    assert_eq!(out[0]["status"], "rejected", "{out}");
    assert_eq!(out[0]["error"]["error"], "foreign_site", "{out}");
    assert_eq!(out[1]["status"], "created", "{out}");

    // The custody hand-over: the shipment names the receiver and its site; the receiver records at its own
    // site, not at the sender's.
    let ship = json!({ "client_id": cid(), "event_time": days_ago(1),
        "details": { "kind": "shipping", "to_org_id": w.processor_org, "to_site_id": w.line } });
    let (s, e) = app.post(&path, Some(&w.farmer.token), &with_site(ship, w.plot));
    assert_eq!(s, 201, "{e}");
    let receive = || json!({ "client_id": cid(), "event_time": days_ago(1), "details": { "kind": "receiving" } });
    let (s, e) = app.post(
        &path,
        Some(&w.processor.token),
        &with_site(receive(), w.plot),
    );
    assert_eq!((s, e["error"].as_str()), (422, Some("foreign_site")), "{e}");
    let (s, e) = app.post(
        &path,
        Some(&w.processor.token),
        &with_site(receive(), w.line),
    );
    assert_eq!(s, 201, "{e}");

    // A transformation happens at a site of the organisation doing it.
    let split = |site: SiteId| {
        json!({
            "client_id": cid(), "kind": "split", "event_time": days_ago(0), "site_id": site,
            "inputs": [{ "batch_id": w.batch, "quantity": 1000.0 }],
            "outputs": [
                { "product_id": w.juice, "lot_code": format!("J-{}", &cid()[..6]), "quantity": 400.0, "unit": "kg" },
                { "product_id": w.juice, "lot_code": format!("J-{}", &cid()[..6]), "quantity": 600.0, "unit": "kg" }
            ]
        })
    };
    let (s, e) = app.post(
        "/api/v1/transformations",
        Some(&w.processor.token),
        &split(w.plot),
    );
    assert_eq!((s, e["error"].as_str()), (422, Some("foreign_site")), "{e}");
    let (s, e) = app.post(
        "/api/v1/transformations",
        Some(&w.processor.token),
        &split(w.line),
    );
    assert_eq!(s, 201, "{e}");
}

fn records_attach_only_their_writers_images(app: TestApp) {
    let w = World::build(&app);
    let theirs = foreign_plot(&app, &w);
    camera_image(&app, w.coop.0, w.plot, 9101, 9001, 2);
    camera_image(&app, w.other_coop.0, theirs, 9102, 9002, 2);
    let path = records_path(w.batch);
    let attach = |ids: &[&str]| {
        let mut body = note("带照片");
        body["attachments"] = json!(ids);
        body
    };
    let (s, e) = app.post(&path, Some(&w.farmer.token), &attach(&["image:9002"]));
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("foreign_attachment")),
        "{e}"
    );
    let (s, e) = app.post(
        &path,
        Some(&w.farmer.token),
        &attach(&["image:9001", "image:9002"]),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("foreign_attachment")),
        "{e}"
    );
    let (s, e) = app.post(&path, Some(&w.farmer.token), &attach(&["image:99999"]));
    assert_eq!((s, e["error"].as_str()), (404, Some("not_found")), "{e}");
    let (s, e) = app.post(&path, Some(&w.farmer.token), &attach(&["IMG_0001.jpg"]));
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("invalid_attachment")),
        "{e}"
    );
    let (s, e) = app.post(&path, Some(&w.farmer.token), &attach(&["image:9001"]));
    assert_eq!(s, 201, "{e}");
    assert_eq!(e["attachments"], json!(["image:9001"]));

    let items = json!([
        { "batch_id": w.batch, "record": attach(&["image:9002"]) },
        { "batch_id": w.batch, "record": attach(&["image:9001"]) },
    ]);
    let (s, out) = app.post("/api/v1/records/sync", Some(&w.farmer.token), &items);
    assert_eq!(s, 200, "{out}");
    assert_eq!(out[0]["error"]["error"], "foreign_attachment", "{out}");
    assert_eq!(out[1]["status"], "created", "{out}");
}

fn public_page_shows_no_foreign_plot_or_photos(app: TestApp) {
    let w = World::build(&app);
    let theirs = foreign_plot(&app, &w);
    camera_image(&app, w.coop.0, w.plot, 9101, 9001, 3);
    camera_image(&app, w.other_coop.0, theirs, 9102, 9002, 3);
    app.test_db
        .raw("UPDATE products SET gtin = '6901234567892' WHERE name = '华宁柑橘'");
    let path = records_path(w.batch);
    let (s, e) = app.post(
        &path,
        Some(&w.farmer.token),
        &with_site(spraying(5, 1), w.plot),
    );
    assert_eq!(s, 201, "{e}");
    // The farmer's irrigation at the other cooperative's plot is refused …
    let irrigation = json!({ "client_id": cid(), "event_time": days_ago(2), "site_id": theirs,
        "details": { "kind": "irrigation", "method": "滴灌" } });
    let (s, e) = app.post(&path, Some(&w.farmer.token), &irrigation);
    assert_eq!((s, e["error"].as_str()), (422, Some("foreign_site")), "{e}");
    // … and one stored before the check (written here around it) does not reach the page either.
    let t = chrono::Utc::now().timestamp_millis() - 2 * 86_400_000;
    app.test_db.raw(&format!(
        "INSERT INTO records (client_id, batch_id, seq, kind, event_time, received_at, site_id, actor_user_id, \
         org_id, details, attachments, flags, supersedes_id, prev_hash, hash) VALUES ('{}', {}, 100, \
         'irrigation', {t}, {t}, {}, {}, {}, '{{\"kind\":\"irrigation\",\"method\":\"滴灌\"}}', '[]', '[]', NULL, \
         'x', 'y')",
        cid(),
        w.batch.0,
        theirs.0,
        w.farmer.actor.user_id.0,
        w.coop.0
    ));
    let (s, e) = app.post(
        &path,
        Some(&w.farmer.token),
        &json!({ "client_id": cid(), "event_time": days_ago(1), "site_id": w.plot,
            "details": { "kind": "harvest", "quantity": 900.0, "unit": "kg" } }),
    );
    assert_eq!(s, 201, "{e}");

    let (s, story) = app.get(&format!("/api/v1/public/batches/{}", w.batch), None);
    assert_eq!(s, 200, "{story}");
    let text = story.to_string();
    assert!(
        !text.contains("盘溪2号地块"),
        "the foreign plot is named: {text}"
    );
    let records = story["batch"]["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{text}");
    assert!(
        records.iter().all(|r| r["site_id"] != json!(theirs.0)),
        "{text}"
    );
    assert!(records.iter().any(|r| r["site"] == "1号地块"), "{text}");

    let (s, _, html) = app.fetch("/01/6901234567892/10/QL-001", None, None);
    assert_eq!(s, 200);
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains(&format!("/b/{}/photos/9001", w.batch.0)),
        "the batch's own plot photo is shown"
    );
    assert!(
        !html.contains(&format!("/b/{}/photos/9002", w.batch.0)),
        "the other cooperative's photo is shown"
    );
    assert!(!html.contains("盘溪2号地块"));
    assert_eq!(
        app.fetch(&format!("/b/{}/photos/9002/thumb", w.batch.0), None, None)
            .0,
        404
    );
}

fn client_ids_belong_to_their_organisation(app: TestApp) {
    let w = World::build(&app);
    let theirs = app
        .db
        .write(|c| {
            let product = sites::create_product(
                c,
                w.other_coop,
                &NewProduct {
                    name: "盘溪白菜".into(),
                    category: "蔬菜".into(),
                    brand: None,
                    certifications: vec![],
                    gtin: None,
                    label_fields: LabelField::DEFAULT.to_vec(),
                    distribution_area: vec![],
                },
            )?;
            batches::create(
                c,
                &w.other_farmer.actor,
                &NewBatch {
                    product_id: product.id,
                    lot_code: "PX-001".into(),
                    quantity: 10.0,
                    unit: "kg".into(),
                    origin_site_id: None,
                },
            )
        })
        .unwrap()
        .id;
    let mine = note("青龙的秘密");
    let (s, a) = app.post(&records_path(w.batch), Some(&w.farmer.token), &mine);
    assert_eq!(s, 201, "{a}");

    // Another organisation sending the same client id gets its own record, and never sees the first.
    let mut same_id = note("盘溪的记录");
    same_id["client_id"] = mine["client_id"].clone();
    let (s, b) = app.post(&records_path(theirs), Some(&w.other_farmer.token), &same_id);
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["details"]["text"], "盘溪的记录");
    assert_eq!(b["batch_id"], theirs.0);
    assert!(!b.to_string().contains("青龙的秘密"), "{b}");
    // Each resend answers its own organisation's record.
    let (s, again) = app.post(&records_path(theirs), Some(&w.other_farmer.token), &same_id);
    assert_eq!((s, &again["id"]), (200, &b["id"]));
    let (s, again) = app.post(&records_path(w.batch), Some(&w.farmer.token), &mine);
    assert_eq!((s, &again["id"]), (200, &a["id"]));

    // The sync path alike.
    let synced = note("青龙同步");
    let (s, _) = app.post(
        "/api/v1/records/sync",
        Some(&w.farmer.token),
        &json!([{ "batch_id": w.batch, "record": synced }]),
    );
    assert_eq!(s, 200);
    let mut taken = note("盘溪同步");
    taken["client_id"] = synced["client_id"].clone();
    let (s, out) = app.post(
        "/api/v1/records/sync",
        Some(&w.other_farmer.token),
        &json!([{ "batch_id": theirs, "record": taken }]),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(out[0]["status"], "created", "{out}");
    assert!(!out.to_string().contains("青龙同步"), "{out}");

    // Within one organisation a different record under a used client id is still a conflict, with both.
    let mut different = mine.clone();
    different["details"]["text"] = json!("改过的");
    let (s, err) = app.post(&records_path(w.batch), Some(&w.farmer.token), &different);
    assert_eq!(s, 409, "{err}");
    assert_eq!(err["error"], "record_conflict");
    assert_eq!(err["details"]["stored"]["id"], a["id"]);
    assert_eq!(err["details"]["stored"]["details"]["text"], "青龙的秘密");
    assert_eq!(err["details"]["submitted"]["details"]["text"], "改过的");
    let (s, out) = app.post(
        "/api/v1/records/sync",
        Some(&w.farmer.token),
        &json!([{ "batch_id": w.batch, "record": different }]),
    );
    assert_eq!(s, 200);
    assert_eq!(out[0]["error"]["error"], "record_conflict", "{out}");
    assert_eq!(out[0]["error"]["details"]["stored"]["id"], a["id"], "{out}");
}

fn free_text_and_numbers_are_bounded(app: TestApp) {
    let w = World::build(&app);
    let path = records_path(w.batch);
    let before = app.counts();
    let refused = |body: &Value, code: &str, field: &str| {
        let (s, e) = app.post(&path, Some(&w.farmer.token), body);
        assert_eq!((s, e["error"].as_str()), (422, Some(code)), "{e}");
        assert!(
            e["message"].as_str().unwrap().contains(field),
            "the message names {field}: {e}"
        );
        let (s, out) = app.post(
            "/api/v1/records/sync",
            Some(&w.farmer.token),
            &json!([{ "batch_id": w.batch, "record": body }]),
        );
        assert_eq!(s, 200);
        assert_eq!(out[0]["error"]["error"], code, "{out}");
    };
    refused(
        &note(&"a".repeat(200_000)),
        "field_too_long",
        "details.text",
    );
    refused(&note("a\u{0}b"), "invalid_characters", "details.text");
    refused(
        &note("清除\u{1b}[2J屏幕"),
        "invalid_characters",
        "details.text",
    );
    let mut dose = spraying(3, 7);
    dose["details"]["dose"] = json!(1e308);
    refused(&dose, "invalid_number", "details.dose");
    let mut name = spraying(3, 7);
    name["details"]["pesticide_name"] = json!("阿维菌素\n第二行");
    refused(&name, "invalid_characters", "details.pesticide_name");
    let mut harvest = note("x");
    harvest["details"] = json!({ "kind": "harvest", "quantity": 1e12, "unit": "kg" });
    refused(&harvest, "invalid_number", "details.quantity");
    assert_eq!(app.counts(), before, "nothing refused was stored");

    // A note may span lines and use the whole 2,000 characters.
    let (s, e) = app.post(
        &path,
        Some(&w.farmer.token),
        &note(&format!("第一行\n{}", "字".repeat(1996))),
    );
    assert_eq!(s, 201, "{e}");

    // Other input models refuse alike.
    let (s, e) = app.post(
        "/api/v1/products",
        Some(&w.farmer.token),
        &json!({ "name": "x".repeat(201), "category": "水果" }),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("field_too_long")),
        "{e}"
    );
    let (s, e) = app.post(
        "/api/v1/sites",
        Some(&w.farmer.token),
        &json!({ "name": "地块\u{0}", "kind": "plot", "division_code": "530424" }),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("invalid_characters")),
        "{e}"
    );
    let (s, e) = app.post(
        "/api/v1/batches",
        Some(&w.farmer.token),
        &json!({ "product_id": w.citrus, "lot_code": "BIG-1", "quantity": 1e308, "unit": "kg" }),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("invalid_quantity")),
        "{e}"
    );
    let (s, e) = app.post(
        &format!("/api/v1/batches/{}/recall", w.batch),
        Some(&w.regulator.token),
        &json!({ "reason": "r".repeat(501) }),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("field_too_long")),
        "{e}"
    );
}

fn record_list_pages_through_a_batch(app: TestApp) {
    let w = World::build(&app);
    let path = records_path(w.batch);
    let mut ids = Vec::new();
    for i in 0..7 {
        let (s, r) = app.post(&path, Some(&w.farmer.token), &note(&format!("第{i}条")));
        assert_eq!(s, 201, "{r}");
        ids.push(r["id"].clone());
    }
    // A correction of the first record, at the end of the chain: the first page shows it applied.
    let correction = json!({ "client_id": cid(), "event_time": days_ago(0),
        "details": { "kind": "correction", "supersedes": ids[0], "reason": "写错了",
                     "replacement": { "kind": "note", "text": "第0条（改）" } } });
    assert_eq!(app.post(&path, Some(&w.farmer.token), &correction).0, 201);

    let walk = |query: &str| -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<i64> = None;
        let mut pages = 0;
        loop {
            let url = match after {
                Some(a) => format!("{path}?{query}limit=3&after={a}"),
                None => format!("{path}?{query}limit=3"),
            };
            let (s, page) = app.get(&url, Some(&w.farmer.token));
            assert_eq!(s, 200, "{page}");
            let items = page["items"].as_array().expect("a page has items").clone();
            assert!(items.len() <= 3);
            out.extend(items);
            pages += 1;
            match page["next_after"].as_i64() {
                Some(a) => after = Some(a),
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        out
    };
    let view = walk("");
    let seqs: Vec<i64> = view.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=7).collect::<Vec<_>>(),
        "in chain order, no gap, no repeat"
    );
    assert_eq!(view[0]["state"], "corrected");
    assert_eq!(view[0]["details"]["text"], "第0条（改）");
    assert_eq!(view[0]["corrections"][0]["reason"], "写错了");
    let history = walk("history=true&");
    let seqs: Vec<i64> = history.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    assert_eq!(history[7]["details"]["kind"], "correction");

    // Without paging parameters: the first page of 50.
    let (_, first) = app.get(&path, Some(&w.farmer.token));
    assert_eq!(first["items"].as_array().unwrap().len(), 7);
    assert!(first["next_after"].is_null());
    for bad in ["limit=0", "limit=201"] {
        let (s, e) = app.get(&format!("{path}?{bad}"), Some(&w.farmer.token));
        assert_eq!(
            (s, e["error"].as_str()),
            (422, Some("invalid_page")),
            "{bad}: {e}"
        );
    }
}

/// The migration that scopes client ids rebuilds SQLite's tables: every record (ids, chains), transformation
/// and what refers to them survives it, down and up again.
fn client_ids_per_org_migration_keeps_every_row(app: TestApp) {
    const NAME: &str = "2026-12-04-000007_client_ids_per_org";
    let w = World::build(&app);
    let path = records_path(w.batch);
    for body in [with_site(spraying(3, 30), w.plot), note("巡园")] {
        assert_eq!(app.post(&path, Some(&w.farmer.token), &body).0, 201);
    }
    // A harvest within the interval: flagged, with an alert that refers to the record.
    let harvest = json!({ "client_id": cid(), "event_time": days_ago(1),
        "details": { "kind": "harvest", "quantity": 900.0, "unit": "kg" } });
    let (s, h) = app.post(&path, Some(&w.farmer.token), &harvest);
    assert_eq!(
        (s, &h["flags"]),
        (201, &json!(["harvest_within_phi"])),
        "{h}"
    );
    let snapshot = |app: &TestApp| {
        app.db
            .read(|c| {
                let history = suyuan_core::store::records::history(c, w.batch)?;
                let report = suyuan_core::store::verify::verify_chains(c, |_| {})?;
                Ok((
                    history
                        .into_iter()
                        .map(|r| (r.id, r.client_id, r.hash))
                        .collect::<Vec<_>>(),
                    report.records,
                    report.issues.len(),
                ))
            })
            .unwrap()
    };
    let before = snapshot(&app);
    assert_eq!((before.0.len(), before.2), (3, 0));

    let dir = match app.test_db.backend {
        crate::support::Backend::Sqlite => "sqlite",
        crate::support::Backend::Postgres => "postgres",
    };
    let down = std::fs::read_to_string(format!(
        "{}/../migrations/{dir}/{NAME}/down.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    app.test_db.raw(&down);
    app.test_db
        .raw("DELETE FROM __diesel_schema_migrations WHERE version = '20261204000007'");
    assert_eq!(snapshot(&app), before, "down keeps every row");
    let mut conn = app.db.conn().unwrap();
    let applied = suyuan_core::db::run_migrations(&mut conn).unwrap();
    assert_eq!(applied, ["20261204000007"]);
    drop(conn);
    assert_eq!(snapshot(&app), before, "up keeps every row");
    let (s, alerts) = app.get("/api/v1/alerts", Some(&w.farmer.token));
    assert_eq!(s, 200);
    assert!(
        alerts.to_string().contains("harvest_within_phi"),
        "{alerts}"
    );
    let refused = app
        .test_db
        .try_raw("DELETE FROM records")
        .expect_err("the database refuses deleting records");
    assert!(refused.contains("records are append-only"), "{refused}");

    // Client ids still identify the organisation's records.
    let mut reused = note("另一个合作社");
    reused["client_id"] = json!(before.0[1].1);
    let (s, e) = app.post(&path, Some(&w.farmer.token), &reused);
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("record_conflict")),
        "{e}"
    );
}
