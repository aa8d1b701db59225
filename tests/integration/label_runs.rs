//! Label runs through the API, end to end: a run asked for over HTTP is minted in the background, its
//! PDFs are downloaded, rendered at the thermal printers' 203 dpi with `pdftoppm` and decoded with
//! `zbarimg` (an independent decoder); every decoded URL verifies and matches the manifest. Then the
//! lifecycle over HTTP with scanned codes and typed short codes (activate a range, void one label), the
//! label URL itself as a page and as JSON, the refusals, the offline `suyuan verify label` command and
//! the demo county's labels.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use suyuan_core::store::labels;
use suyuan_label_gen::keystore::KeyStore;
use suyuan_server::commands::{demo_labels, keys as keys_cmd, verify as verify_cmd};

use crate::support::{encode, Backend, TestApp, World};

crate::both_backends!(
    api_run_is_minted_in_the_background_and_scans_back,
    lifecycle_over_http_and_the_label_page,
    run_requests_are_checked,
    demo_county_has_a_label_in_each_state,
    product_chooses_what_its_labels_show,
    label_quota_is_set_by_operators_and_holds,
    too_many_queued_runs_are_refused,
    concurrent_requests_cannot_pass_the_quota,
    command_line_honours_the_quota_unless_overridden,
);

#[test]
fn verify_label_command_works_offline() {
    if let Some(app) = TestApp::start(Backend::Sqlite) {
        offline_verification(app);
    }
}

/// A signing key in the server's data folder, registered in its database.
fn key(app: &TestApp) {
    keys_cmd::create_in(&app.db, &KeyStore::in_data_dir(app.data_dir.path()), false).unwrap();
}

/// Asks for a run as `token` and waits until the background minter has finished it.
fn minted_run(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, run) = app.post("/api/v1/label-runs", Some(token), &body);
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["status"], "minting", "{run}");
    let id = run["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, run) = app.get(&format!("/api/v1/label-runs/{id}"), Some(token));
        assert_eq!(status, 200, "{run}");
        match run["status"].as_str() {
            Some("finished") => return run,
            Some("minting") => {}
            _ => panic!("run did not finish: {run}"),
        }
        assert!(Instant::now() < deadline, "run still minting: {run}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The manifest's rows: (serial, short code, URL); the file each label is printed in follows.
fn manifest(app: &TestApp, token: &str, run: &Value) -> Vec<(String, String, String)> {
    let file = run["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().unwrap().ends_with(".csv"))
        .expect("a manifest");
    let (status, ctype, body) = app.fetch(file["href"].as_str().unwrap(), Some(token), None);
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    String::from_utf8(body)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            assert_eq!(cols.len(), 4, "{l}");
            assert!(cols[3].ends_with(".pdf"), "{l}");
            (cols[0].into(), cols[1].into(), cols[2].into())
        })
        .collect()
}

fn tools_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("SUYUAN_REQUIRE_TOOLS").is_some()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// Renders a PDF at 203 dpi and decodes every QR code on every page with zbarimg.
fn decode_pdf(pdf: &Path) -> Vec<String> {
    let dir = pdf.parent().unwrap();
    let stem = dir.join(pdf.file_stem().unwrap());
    let out = Command::new("pdftoppm")
        .args(["-r", "203", "-gray", "-png"])
        .arg(pdf)
        .arg(&stem)
        .output()
        .expect("pdftoppm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = stem.file_name().unwrap().to_string_lossy().into_owned();
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".png")
        })
        .collect();
    pages.sort();
    assert!(!pages.is_empty());
    let mut urls = Vec::new();
    for page in pages {
        let out = Command::new("zbarimg")
            .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
            .arg(&page)
            .output()
            .expect("zbarimg runs");
        urls.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    urls
}

fn api_run_is_minted_in_the_background_and_scans_back(app: TestApp) {
    let w = World::build(&app);
    key(&app);
    let run = minted_run(
        &app,
        &w.farmer.token,
        json!({"product_id": w.citrus, "count": 60, "layout": "a4-3x8"}),
    );
    assert_eq!(run["host"], "t.cn", "the server's public host by default");
    // 48 labels per file (two A4 pages of 24) → two PDFs and the manifest.
    let files = run["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{run}");
    let rows = manifest(&app, &w.farmer.token, &run);
    assert_eq!(rows.len(), 60);
    assert_eq!(rows[0].1, run["first_serial"]);
    assert_eq!(rows[59].1, run["last_serial"]);

    if !(have("pdftoppm") && have("zbarimg")) {
        if tools_required() {
            panic!("pdftoppm (poppler-utils) and zbarimg (zbar-tools) are required here (CI)");
        }
        eprintln!("SKIPPED decoding: install poppler-utils and zbar-tools");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut decoded = Vec::new();
    for f in files
        .iter()
        .filter(|f| f["name"].as_str().unwrap().ends_with(".pdf"))
    {
        let (status, ctype, body) =
            app.fetch(f["href"].as_str().unwrap(), Some(&w.farmer.token), None);
        assert_eq!(status, 200);
        assert_eq!(ctype, "application/pdf");
        assert_eq!(body.len() as u64, f["bytes"].as_u64().unwrap());
        let path = dir.path().join(f["name"].as_str().unwrap());
        std::fs::write(&path, body).unwrap();
        decoded.extend(decode_pdf(&path));
    }
    assert_eq!(decoded.len(), 60, "every label decodes once: {decoded:?}");
    let manifest_urls: BTreeSet<String> = rows.iter().map(|r| r.2.to_lowercase()).collect();
    let decoded_urls: BTreeSet<String> = decoded.iter().map(|u| u.to_lowercase()).collect();
    assert_eq!(
        decoded_urls, manifest_urls,
        "decoded codes match the manifest"
    );
    let serials: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for url in &decoded {
        let (status, v) = app.get(&format!("/api/v1/labels/verify?code={}", encode(url)), None);
        assert_eq!(status, 200);
        assert_eq!(v["verdict"], "genuine", "{url}: {v}");
        assert_eq!(v["state"], "minted", "{v}");
        assert!(serials.contains(v["serial"].as_str().unwrap()));
    }
}

fn lifecycle_over_http_and_the_label_page(app: TestApp) {
    let w = World::build(&app);
    key(&app);
    let run = minted_run(
        &app,
        &w.farmer.token,
        json!({"product_id": w.citrus, "count": 30, "layout": "roll-50x30", "host": "TRACE.HN.CN"}),
    );
    let rows = manifest(&app, &w.farmer.token, &run);
    let url = |i: usize| rows[i].2.clone();
    let digits = |i: usize| rows[i].2.rsplit('/').next().unwrap().to_owned();

    // The first and last label of a strip, as a scan gun reads them (upper-case form of the URL).
    let (status, act) = app.post(
        "/api/v1/labels/activations",
        Some(&w.farmer.token),
        &json!({"batch_id": w.batch, "first": url(0).to_uppercase(), "last": url(9)}),
    );
    assert_eq!(status, 201, "{act}");
    assert_eq!(
        act["last_sequence"].as_i64().unwrap() - act["first_sequence"].as_i64().unwrap(),
        9
    );
    // A single label by its typed short code.
    let (status, act) = app.post(
        "/api/v1/labels/activations",
        Some(&w.farmer.token),
        &json!({"batch_id": w.batch, "first": rows[12].1}),
    );
    assert_eq!(status, 201, "{act}");
    // Overlap, void and forged codes are refused.
    let (status, e) = app.post(
        "/api/v1/labels/activations",
        Some(&w.farmer.token),
        &json!({"batch_id": w.batch, "first": url(5), "last": url(11)}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (409, Some("label_already_active")),
        "{e}"
    );
    let mut forged = digits(20).into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, e) = app.post(
        "/api/v1/labels/activations",
        Some(&w.farmer.token),
        &json!({"batch_id": w.batch, "first": forged}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (422, Some("label_not_genuine")),
        "{e}"
    );
    let (status, e) = app.post(
        "/api/v1/labels/activations",
        Some(&w.farmer.token),
        &json!({"batch_id": w.batch, "first": "1234 5678"}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (422, Some("malformed_label")),
        "{e}"
    );
    let (status, e) = app.post(
        "/api/v1/labels/activations",
        Some(&w.other_farmer.token),
        &json!({"batch_id": w.batch, "first": url(20)}),
    );
    assert_eq!(status, 404, "another cooperative does not see the run: {e}");

    let (status, v) = app.post(
        "/api/v1/labels/voids",
        Some(&w.farmer.token),
        &json!({"label": rows[15].1, "reason": "印刷模糊"}),
    );
    assert_eq!(status, 201, "{v}");
    let (status, e) = app.post(
        "/api/v1/labels/voids",
        Some(&w.farmer.token),
        &json!({"label": url(15), "reason": "again"}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (409, Some("label_already_void"))
    );
    let (status, e) = app.post(
        "/api/v1/labels/voids",
        Some(&w.farmer.token),
        &json!({"label": url(16), "reason": "  "}),
    );
    assert_eq!((status, e["error"].as_str()), (422, Some("missing_reason")));

    // The run's detail lists who bound and voided what.
    let (_, detail) = app.get(
        &format!("/api/v1/label-runs/{}", run["id"]),
        Some(&w.regulator.token),
    );
    assert_eq!(
        detail["activations"].as_array().unwrap().len(),
        2,
        "{detail}"
    );
    assert_eq!(detail["voids"][0]["reason"], "印刷模糊");
    assert_eq!(
        detail["voids"][0]["voided_by"],
        json!(w.farmer.actor.user_id)
    );

    // The label URL itself: a page in Chinese by default, English on request, JSON for programs.
    let page = |path: &str| {
        let (status, ctype, body) = app.fetch(path, None, None);
        assert_eq!(status, 200, "{path}");
        assert!(ctype.starts_with("text/html"), "{ctype}");
        String::from_utf8(body).unwrap()
    };
    let active = page(&format!("/{}", digits(3)));
    assert!(
        active.contains("正品") && active.contains("华宁柑橘"),
        "{active}"
    );
    assert!(active.contains(&rows[3].1), "the short code is shown");
    assert!(page(&format!("/{}", digits(20))).contains("未激活"));
    assert!(page(&format!("/{}", digits(15))).contains("已作废"));
    assert!(page(&format!("/{}?lang=en", digits(15))).contains("Void"));
    assert!(page(&format!("/{forged}")).contains("假冒标签"));
    assert!(page("/12345").contains("不是有效的追溯码"));
    let (status, ctype, body) =
        app.fetch(&format!("/{}", digits(3)), None, Some("application/json"));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["verdict"], "genuine");
    assert_eq!(v["state"], "active");
    assert_eq!(v["batch_id"], json!(w.batch));

    // A recalled batch refuses activation over HTTP too, with the reason.
    let (status, r) = app.post(
        &format!("/api/v1/batches/{}/recall", w.batch),
        Some(&w.regulator.token),
        &json!({"reason": "农残超标"}),
    );
    assert_eq!(status, 200, "{r}");
    let (status, e) = app.post(
        "/api/v1/labels/activations",
        Some(&w.farmer.token),
        &json!({"batch_id": w.batch, "first": url(25)}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (409, Some("batch_recalled")),
        "{e}"
    );
    assert!(
        e["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("农残超标"),
        "{e}"
    );
    let recalled = page(&format!("/{}", digits(3)));
    assert!(
        recalled.contains("已召回") && recalled.contains("农残超标"),
        "{recalled}"
    );
}

fn run_requests_are_checked(app: TestApp) {
    let w = World::build(&app);
    let t = Some(w.farmer.token.as_str());
    let before = app.counts();
    let (status, e) = app.post(
        "/api/v1/label-runs",
        t,
        &json!({"product_id": w.citrus, "count": 10, "layout": "a4-3x8"}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (422, Some("no_signing_key")),
        "{e}"
    );
    key(&app);
    let before_key = app.counts();
    for (body, status, code) in [
        (
            json!({"product_id": w.citrus, "count": 10, "layout": "a5"}),
            422,
            "unknown_layout",
        ),
        (
            json!({"product_id": w.citrus, "count": 0, "layout": "a4-3x8"}),
            422,
            "invalid_count",
        ),
        (
            json!({"product_id": w.citrus, "count": 1_000_001, "layout": "a4-3x8"}),
            422,
            "invalid_count",
        ),
        (
            json!({"product_id": w.citrus, "count": 5, "layout": "a4-3x8", "host": "evil host/x"}),
            422,
            "invalid_host",
        ),
        (
            json!({"product_id": 999_999, "count": 5, "layout": "a4-3x8"}),
            404,
            "not_found",
        ),
        (
            json!({"product_id": w.citrus, "count": 5, "layout": "a4-3x8", "colour": "red"}),
            422,
            "invalid_body",
        ),
        (
            json!({"product_id": w.citrus, "count": "5", "layout": "a4-3x8"}),
            422,
            "invalid_body",
        ),
    ] {
        let (s, e) = app.post("/api/v1/label-runs", t, &body);
        assert_eq!(
            (s, e["error"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
    }
    // Another organisation's product: not the processor's to label (its runs are not even visible).
    let (s, _) = app.post(
        "/api/v1/label-runs",
        Some(&w.processor.token),
        &json!({"product_id": w.citrus, "count": 5, "layout": "a4-3x8"}),
    );
    assert_eq!(s, 404);
    let (s, _) = app.post(
        "/api/v1/label-runs",
        None,
        &json!({"product_id": w.citrus, "count": 5, "layout": "a4-3x8"}),
    );
    assert_eq!(s, 401);
    assert_eq!(app.counts(), before_key, "refusals reserve nothing");
    assert_ne!(before, before_key);

    let run = minted_run(
        &app,
        &w.farmer.token,
        json!({"product_id": w.citrus, "count": 3, "layout": "roll-50x30"}),
    );
    let id = run["id"].as_i64().unwrap();
    let href = run["files"][0]["href"].as_str().unwrap().to_owned();
    assert_eq!(app.fetch(&href, Some(&w.other_farmer.token), None).0, 404);
    assert_eq!(app.fetch(&href, None, None).0, 401);
    assert_eq!(app.fetch(&href, Some(&w.regulator.token), None).0, 200);
    for name in ["..%2Fkeys%2Fkey-01.key", "run.pdf", "%2Fetc%2Fpasswd"] {
        let (s, _, _) = app.fetch(
            &format!("/api/v1/label-runs/{id}/files/{name}"),
            Some(&w.farmer.token),
            None,
        );
        assert_eq!(s, 404, "{name}");
    }
    // Lists: the farmer sees the cooperative's run, another cooperative none, the regulator all.
    let (_, mine) = app.get("/api/v1/label-runs", Some(&w.farmer.token));
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = app.get("/api/v1/label-runs", Some(&w.other_farmer.token));
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let (_, all) = app.get("/api/v1/label-runs", Some(&w.regulator.token));
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get(
            &format!("/api/v1/label-runs/{id}"),
            Some(&w.other_farmer.token)
        )
        .0,
        404
    );
}

fn demo_county_has_a_label_in_each_state(app: TestApp) {
    let summary = suyuan_server::demo::seed(&app.db).unwrap();
    let batch = summary.showcase_batch.unwrap();
    let settings = suyuan_server::minting::MintSettings {
        env_key: None,
        ..suyuan_server::minting::MintSettings::in_data_dir(app.data_dir.path())
    };
    let first = demo_labels::ensure(&app.db, &settings, "t.cn", batch).unwrap();
    let again = demo_labels::ensure(&app.db, &settings, "t.cn", batch).unwrap();
    assert_eq!(
        first.run.id, again.run.id,
        "a second start mints nothing new"
    );
    assert_eq!(first.active, again.active);
    for (digits, state) in [
        (&first.active, "active"),
        (&first.unactivated, "minted"),
        (&first.void, "void"),
    ] {
        let (_, _, body) = app.fetch(&format!("/{digits}"), None, Some("application/json"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["verdict"], "genuine", "{v}");
        assert_eq!(v["state"], state, "{v}");
    }
    let runs = app
        .db
        .read(|c| labels::list_runs(c, None, suyuan_core::store::Page::FIRST))
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    let files: Vec<String> = std::fs::read_dir(settings.run_dir(first.run.id))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("-manifest.csv")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with(".pdf")), "{files:?}");
}

fn offline_verification(app: TestApp) {
    World::build(&app);
    key(&app);
    let keys = app.db.read(labels::list_keys).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.json");
    std::fs::write(
        &keys_file,
        serde_json::to_string(&suyuan_server::api::labels::document(&keys)).unwrap(),
    )
    .unwrap();
    let key = KeyStore::in_data_dir(app.data_dir.path())
        .load(suyuan_label_gen::KeyId::new(keys[0].key_id as u32).unwrap())
        .unwrap();
    let serial = suyuan_label_gen::LabelSerial::new(key.id(), 7).unwrap();
    let url = suyuan_label_gen::LabelCode::mint(&key, serial)
        .unwrap()
        .to_url("t.cn");
    let check = |code: &str| {
        verify_cmd::run(verify_cmd::VerifyCommand::Label(verify_cmd::LabelArgs {
            code: code.into(),
            keys: keys_file.clone(),
            json: false,
        }))
    };
    assert!(check(&url).unwrap(), "genuine");
    assert!(check(&url.to_uppercase()).unwrap(), "upper-case form");
    let mut edited = url.clone().into_bytes();
    let i = edited.len() - 5;
    edited[i] = if edited[i] == b'9' { b'8' } else { b'9' };
    assert!(
        !check(&String::from_utf8(edited).unwrap()).unwrap(),
        "edited"
    );
    assert!(!check("garbage").unwrap(), "malformed");
    let missing = verify_cmd::run(verify_cmd::VerifyCommand::Label(verify_cmd::LabelArgs {
        code: url,
        keys: dir.path().join("absent.json"),
        json: false,
    }));
    let missing = missing.expect_err("a missing keys file is an error, not a verdict");
    let cause = missing.root_cause().downcast_ref::<std::io::Error>();
    assert!(
        cause.is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            && format!("{missing:#}").contains("absent.json"),
        "not the missing keys file: {missing:#}"
    );
}

/// The text of a PDF, as `pdftotext` extracts it (the font subset maps glyphs back to characters).
fn pdf_text(app: &TestApp, token: &str, run: &Value) -> Option<String> {
    if !have("pdftotext") {
        assert!(
            !tools_required(),
            "pdftotext (poppler-utils) is required here (CI)"
        );
        eprintln!("SKIPPED text check: install poppler-utils");
        return None;
    }
    let file = run["files"]
        .as_array()?
        .iter()
        .find(|f| f["name"].as_str().is_some_and(|n| n.ends_with(".pdf")))?;
    let (_, _, body) = app.fetch(file["href"].as_str()?, Some(token), None);
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("labels.pdf");
    std::fs::write(&path, body).ok()?;
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn product_chooses_what_its_labels_show(app: TestApp) {
    let w = World::build(&app);
    key(&app);
    let (status, product) = app.post(
        "/api/v1/products",
        Some(&w.farmer.token),
        &json!({"name": "青龙冰糖橙", "category": "水果/柑橘", "brand": "海镜", "certifications": ["green_food", "geographical_indication"],
                "label_fields": ["origin", "category", "certifications"]}),
    );
    assert_eq!(status, 201, "{product}");
    assert_eq!(
        product["label_fields"],
        json!(["origin", "category", "certifications"])
    );
    let (status, e) = app.post(
        "/api/v1/products",
        Some(&w.farmer.token),
        &json!({"name": "x", "category": "y", "label_fields": ["brand", "gtin", "origin", "producer", "category"]}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (422, Some("too_many_label_fields"))
    );
    let run = minted_run(
        &app,
        &w.farmer.token,
        json!({"product_id": product["id"], "count": 2, "layout": "roll-50x30"}),
    );
    if let Some(text) = pdf_text(&app, &w.farmer.token, &run) {
        assert!(text.contains("青龙冰糖橙"), "{text}");
        assert!(text.contains("品类：水果/柑橘"), "{text}");
        assert!(text.contains("绿色食品 · 地理标志"), "{text}");
        assert!(text.contains("产地："), "{text}");
        assert!(!text.contains("品牌"), "brand not chosen: {text}");
    }
    // The default: brand, certification marks, producer.
    let run = minted_run(
        &app,
        &w.farmer.token,
        json!({"product_id": w.citrus, "count": 2, "layout": "roll-50x30"}),
    );
    if let Some(text) = pdf_text(&app, &w.farmer.token, &run) {
        assert!(text.contains("青龙柑橘合作社"), "the producer: {text}");
    }
}

fn quota_path(org: suyuan_core::OrgId) -> String {
    format!("/api/v1/organisations/{org}/label-quota")
}

/// Waits until the background minter has ended every run it was given.
fn wait_idle(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let minting = app
            .db
            .read(|c| labels::list_runs(c, None, suyuan_core::store::Page::FIRST))
            .unwrap()
            .items
            .iter()
            .filter(|r| r.status == suyuan_core::model::LabelRunStatus::Minting)
            .count();
        if minting == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "runs still minting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn label_quota_is_set_by_operators_and_holds(app: TestApp) {
    let w = World::build(&app);
    key(&app);
    let path = quota_path(w.coop);
    // Only operators set quotas: the organisation itself and the regulator are refused.
    for token in [&w.farmer.token, &w.regulator.token] {
        let (s, e) = app.call(
            "PUT",
            &path,
            Some(token),
            Some(&json!({"quota": 1_000_000})),
        );
        assert_eq!((s, e["error"].as_str()), (403, Some("forbidden")), "{e}");
    }
    let (s, e) = app.call("PUT", &path, None, Some(&json!({"quota": 10})));
    assert_eq!(s, 401, "{e}");
    let (s, e) = app.call(
        "PUT",
        &path,
        Some(&w.operator.token),
        Some(&json!({"quota": -1})),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("invalid_quota")),
        "{e}"
    );
    let (s, q) = app.call(
        "PUT",
        &path,
        Some(&w.operator.token),
        Some(&json!({"quota": 50})),
    );
    assert_eq!(s, 200, "{q}");
    assert_eq!(
        (
            q["quota"].as_i64(),
            q["used"].as_i64(),
            q["remaining"].as_i64()
        ),
        (Some(50), Some(0), Some(50))
    );
    assert_eq!(q["updated_by"], json!(w.operator.actor.user_id));
    // Members read their own quota; another cooperative cannot see it.
    assert_eq!(app.get(&path, Some(&w.farmer.token)).0, 200);
    assert_eq!(app.get(&path, Some(&w.other_farmer.token)).0, 404);

    let run = |count: i64| {
        app.post(
            "/api/v1/label-runs",
            Some(&w.farmer.token),
            &json!({"product_id": w.citrus, "count": count, "layout": "roll-50x30"}),
        )
    };
    assert_eq!(run(30).0, 202);
    // Over the quota: refused with the remaining amount, and nothing reserved.
    let before = app.counts();
    let next_before = app
        .db
        .read(labels::active_key)
        .unwrap()
        .unwrap()
        .next_sequence;
    let (s, e) = run(21);
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("label_quota_exceeded")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("20 remaining"),
        "{e}"
    );
    assert_eq!(e["details"]["remaining"], 20, "{e}");
    assert_eq!(e["details"]["requested"], 21, "{e}");
    assert_eq!(app.counts(), before, "a refused run stores nothing");
    assert_eq!(
        app.db
            .read(labels::active_key)
            .unwrap()
            .unwrap()
            .next_sequence,
        next_before,
        "and reserves no serials"
    );
    // Exactly up to the quota is accepted.
    wait_idle(&app);
    assert_eq!(run(20).0, 202);
    let (_, q) = app.get(&path, Some(&w.farmer.token));
    assert_eq!(
        (q["used"].as_i64(), q["remaining"].as_i64()),
        (Some(50), Some(0)),
        "{q}"
    );
    let (s, e) = run(1);
    assert_eq!(
        (s, e["details"]["remaining"].as_i64()),
        (409, Some(0)),
        "{e}"
    );
    // Another organisation's runs are not limited by it.
    assert_eq!(
        app.post(
            "/api/v1/label-runs",
            Some(&w.processor.token),
            &json!({"product_id": w.juice, "count": 60, "layout": "roll-50x30"}),
        )
        .0,
        202
    );
    // Lifted: no limit, still counted.
    let (s, q) = app.call(
        "PUT",
        &path,
        Some(&w.operator.token),
        Some(&json!({"quota": null})),
    );
    assert_eq!((s, q["remaining"].clone()), (200, Value::Null), "{q}");
    wait_idle(&app);
    assert_eq!(run(5).0, 202);
    let (_, q) = app.get(&path, Some(&w.operator.token));
    assert_eq!(q["used"], 55, "{q}");
    wait_idle(&app);
}

/// A run left `minting` that nobody mints (the command line's runs are not queued on the server).
fn pending_run(app: &TestApp, product: suyuan_core::ProductId) {
    let key_id = app.db.read(labels::active_key).unwrap().unwrap().key_id;
    app.db
        .write(|c| {
            labels::create_run(
                c,
                suyuan_core::model::RunRequester::CommandLine,
                &suyuan_core::model::NewLabelRun {
                    product_id: product,
                    key_id,
                    count: 10,
                    layout: "roll-50x30".into(),
                    host: "t.cn".into(),
                },
            )
        })
        .unwrap();
}

fn too_many_queued_runs_are_refused(app: TestApp) {
    let w = World::build(&app);
    key(&app);
    let body = json!({"product_id": w.citrus, "count": 10, "layout": "roll-50x30"});
    // Two runs of the cooperative are waiting (the default bound per organisation).
    pending_run(&app, w.citrus);
    pending_run(&app, w.citrus);
    let before = app.counts();
    let (s, e) = app.post("/api/v1/label-runs", Some(&w.farmer.token), &body);
    assert_eq!(
        (s, e["error"].as_str()),
        (429, Some("too_many_label_runs")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("at most 2"), "{e}");
    assert_eq!(app.counts(), before);
    // Six more of the processor's: eight on the platform, the overall bound, so a third organisation that
    // has none waiting is refused too.
    for _ in 0..6 {
        pending_run(&app, w.juice);
    }
    let vegetables = app
        .db
        .write(|c| {
            suyuan_core::store::sites::create_product(
                c,
                w.other_coop,
                &suyuan_core::model::NewProduct {
                    name: "白菜".into(),
                    category: "蔬菜".into(),
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
    let (s, e) = app.post(
        "/api/v1/label-runs",
        Some(&w.other_farmer.token),
        &json!({"product_id": vegetables, "count": 10, "layout": "roll-50x30"}),
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (429, Some("too_many_label_runs")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("at most 8"), "{e}");
    // Once a waiting run has ended (here it failed: its labels no longer count), the cooperative may ask.
    let waiting = app
        .db
        .read(|c| labels::list_runs(c, None, suyuan_core::store::Page::FIRST))
        .unwrap()
        .items;
    let first = waiting
        .iter()
        .find(|r| r.product_id == w.citrus)
        .unwrap()
        .id;
    app.db
        .write(|c| labels::fail_run(c, first, "test"))
        .unwrap();
    let (s, e) = app.post("/api/v1/label-runs", Some(&w.farmer.token), &body);
    assert_eq!(s, 202, "{e}");
    let quota = app.db.read(|c| labels::label_quota(c, w.coop)).unwrap();
    assert_eq!(
        quota.used, 20,
        "the failed run's ten labels were given back"
    );
    wait_idle_api(&app);
}

/// Waits until the runs requested through the API have ended (the command line's stay as they are).
fn wait_idle_api(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !app.db.read(labels::unfinished_api_runs).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "runs still minting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn concurrent_requests_cannot_pass_the_quota(app: TestApp) {
    let w = World::build(&app);
    key(&app);
    let (s, _) = app.call(
        "PUT",
        &quota_path(w.coop),
        Some(&w.operator.token),
        Some(&json!({"quota": 75})),
    );
    assert_eq!(s, 200);
    let key_id = app.db.read(labels::active_key).unwrap().unwrap().key_id;
    // Twelve writers at once ask for ten labels each, straight at the store (no bound on queued runs, so
    // only the quota decides), each in its own transaction from the pool: on PostgreSQL truly at once.
    let outcomes: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let db = app.db.clone();
                let actor = w.farmer.actor;
                let product = w.citrus;
                scope.spawn(move || {
                    db.write(|c| {
                        labels::create_run_with(
                            c,
                            suyuan_core::model::RunRequester::User(&actor),
                            &suyuan_core::model::NewLabelRun {
                                product_id: product,
                                key_id,
                                count: 10,
                                layout: "roll-50x30".into(),
                                host: "t.cn".into(),
                            },
                            labels::RunChecks::default(),
                        )
                    })
                    .map(|_| ())
                    .map_err(|e| e.code().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(accepted, 7, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.as_ref().is_ok()
            || o.as_ref().err().map(String::as_str) == Some("label_quota_exceeded")),
        "{outcomes:?}"
    );
    let quota = app.db.read(|c| labels::label_quota(c, w.coop)).unwrap();
    assert_eq!((quota.used, quota.remaining), (70, Some(5)));
    let runs = app
        .db
        .read(|c| labels::list_runs(c, None, suyuan_core::store::Page::FIRST))
        .unwrap()
        .items;
    assert_eq!(runs.iter().map(|r| r.count).sum::<i64>(), 70);

    // The runs end (failed: their labels are given back), and over HTTP four requests at once ask for 40
    // labels each of the 75: the quota lets exactly one through.
    for run in &runs {
        app.db
            .write(|c| labels::fail_run(c, run.id, "test"))
            .unwrap();
    }
    assert_eq!(
        app.db
            .read(|c| labels::label_quota(c, w.coop))
            .unwrap()
            .used,
        0
    );
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    app.post(
                        "/api/v1/label-runs",
                        Some(&w.farmer.token),
                        &json!({"product_id": w.citrus, "count": 40, "layout": "roll-50x30"}),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409, 409, 409], "{answers:?}");
    for (_, e) in answers.iter().filter(|a| a.0 == 409) {
        assert_eq!(e["details"]["remaining"], 35, "{e}");
    }
    let quota = app.db.read(|c| labels::label_quota(c, w.coop)).unwrap();
    assert_eq!(quota.used, 40);
    wait_idle_api(&app);
}

fn command_line_honours_the_quota_unless_overridden(app: TestApp) {
    use suyuan_server::commands::labels as labels_cmd;
    let w = World::build(&app);
    key(&app);
    let (s, _) = app.call(
        "PUT",
        &quota_path(w.coop),
        Some(&w.operator.token),
        Some(&json!({"quota": 20})),
    );
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    let url = match &app.test_db.url {
        suyuan_core::db::DatabaseUrl::Postgres(u) => u.clone(),
        suyuan_core::db::DatabaseUrl::Sqlite { path, .. } => path.to_string_lossy().into_owned(),
    };
    let args = labels_cmd::MintArgs {
        product: w.citrus.0,
        count: 30,
        layout: "roll-50x30".into(),
        out: dir.path().join("out"),
        host: "t.cn".into(),
        font: None,
        labels_per_file: 100,
        offset_x_mm: 0.0,
        offset_y_mm: 0.0,
        margin_mm: None,
        data: suyuan_server::commands::DataArgs {
            data_dir: app.data_dir.path().into(),
            database_url: Some(url),
            media_dir: None,
        },
    };
    let refused = labels_cmd::mint(&app.db, &args, None, &|_| ()).unwrap_err();
    let text = format!("{refused:#}");
    assert!(text.contains("20 remaining"), "{text}");
    assert!(!dir.path().join("out").exists(), "nothing written");
    let (run, _) = labels_cmd::mint_with(&app.db, &args, true, None, &|_| ()).unwrap();
    assert_eq!(run.status, suyuan_core::model::LabelRunStatus::Finished);
    let quota = app.db.read(|c| labels::label_quota(c, w.coop)).unwrap();
    assert_eq!(
        (quota.used, quota.remaining),
        (30, Some(0)),
        "over-quota labels still count"
    );
}
