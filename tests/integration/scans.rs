//! The consumer scan page and everything a scan sets off: the whole story of a demo label in order, no
//! private field, each counterfeit rule with a sequence that trips it and one that does not, forgery
//! attempts counted by region, no scan lost under concurrent load, and the other ways in (typed short
//! code, kiosk, SMS, GS1 Digital Link).
//!
//! Scanners are told apart by their address, sent as `X-Forwarded-For` (the server trusts it here, as
//! behind a proxy), not by `User-Agent`; regions come from a small IP-to-region file: 10.1/16 昆明, 10.2/16 北京, 10.3/16 玉溪,
//! 10.4/16 广州; or, as out of the box, from the built-in ip2region database and public addresses.

use std::collections::HashSet;
use std::io::Write;

use serde_json::{json, Value};
use suyuan_core::model::Alert;
use suyuan_core::store::alerts::{self, AlertFilter};
use suyuan_core::store::{scans, Page};
use suyuan_core::BatchId;
use suyuan_label_gen::{KeyId, KeyStore, LabelCode, LabelSerial};
use suyuan_server::commands::{demo_labels, demo_media};
use suyuan_server::scans::{IpRegionSetting, ScanSettings};

use crate::support::{Backend, TestApp};

/// Defines each test once per backend, over a fresh demo county.
macro_rules! with_demo {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { if let Some(d) = super::demo(super::Backend::Sqlite) { super::$name(d) } })*
        }
        mod postgres {
            $(#[test] fn $name() { if let Some(d) = super::demo(super::Backend::Postgres) { super::$name(d) } })*
        }
    };
}

with_demo!(
    scan_page_tells_the_whole_story,
    scan_page_shows_nothing_private,
    many_devices_rule,
    impossible_travel_rule,
    outside_area_rule,
    never_minted_and_not_activated_rules,
    forgeries_are_counted_by_region,
    every_scan_is_stored_under_load,
    short_code_kiosk_and_sms,
    gs1_digital_link,
);

const KUNMING: &str = "10.1.0.7";
const BEIJING: &str = "10.2.0.7";
const YUXI: &str = "10.3.0.7";
const GUANGZHOU: &str = "10.4.0.7";
const SMS_TOKEN: &str = "sms-secret";

/// The demo county with its labels, photos and temperatures, on a server that knows the test regions.
struct Demo {
    app: TestApp,
    backend: Backend,
    batch: BatchId,
    /// (short code, digits) of every label of the demo run, in order: 1–24 active, 48 void.
    labels: Vec<(String, String)>,
    unactivated: String,
    void: String,
    _regions: Option<tempfile::NamedTempFile>,
}

/// The demo behind a proxy on 127.0.0.1 (the tests' requests come from there): each request's
/// `X-Forwarded-For` is its phone.
fn demo(backend: Backend) -> Option<Demo> {
    demo_with(
        backend,
        suyuan_server::extract::TrustedProxies::parse("127.0.0.1").unwrap(),
    )
}

fn demo_with(
    backend: Backend,
    trusted_proxies: suyuan_server::extract::TrustedProxies,
) -> Option<Demo> {
    let mut regions = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        regions,
        "start,end,code\n# test regions\n10.1.0.0,10.1.255.255,530102\n10.2.0.0,10.2.255.255,110105\n\
         10.3.0.0,10.3.255.255,530402\n10.4.0.0,10.4.255.255,440106"
    )
    .unwrap();
    let settings = ScanSettings {
        ip_regions: IpRegionSetting::File(regions.path().to_owned()),
        trusted_proxies,
        sms_token: Some(SMS_TOKEN.into()),
        ..Default::default()
    };
    demo_on(backend, settings, Some(regions))
}

/// The demo county on a server with these scan settings; `regions` is kept for as long as the demo.
fn demo_on(
    backend: Backend,
    settings: ScanSettings,
    regions: Option<tempfile::NamedTempFile>,
) -> Option<Demo> {
    let app = TestApp::start_with(backend, settings)?;
    let summary = suyuan_server::demo::seed(&app.db).unwrap();
    let batch = summary.showcase_batch.unwrap();
    demo_media::ensure(&app.db, &app.data_dir.path().join("media")).unwrap();
    let settings = suyuan_server::minting::MintSettings {
        env_key: None,
        ..suyuan_server::minting::MintSettings::in_data_dir(app.data_dir.path())
    };
    let made = demo_labels::ensure(&app.db, &settings, "t.cn", batch).unwrap();
    let dir = settings.run_dir(made.run.id);
    let manifest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-manifest.csv"))
        .unwrap();
    let labels = std::fs::read_to_string(manifest)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (
                cols[1].to_owned(),
                cols[2].rsplit('/').next().unwrap().to_owned(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(labels.len(), 48);
    assert_eq!(labels[0].1, made.active);
    Some(Demo {
        app,
        backend,
        batch,
        labels,
        unactivated: made.unactivated,
        void: made.void,
        _regions: regions,
    })
}

/// A page as a phone at `ip` with browser `agent` sees it.
fn scan(app: &TestApp, path: &str, ip: &str, agent: &str) -> (u16, String) {
    let resp = match ureq::get(&app.url(path))
        .set("X-Forwarded-For", ip)
        .set("User-Agent", agent)
        .call()
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    (resp.status(), resp.into_string().unwrap())
}

fn page(app: &TestApp, path: &str) -> String {
    let (status, body) = scan(app, path, KUNMING, "test-phone");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn alerts_of(app: &TestApp, kind: &str) -> Vec<Alert> {
    app.flush_scans();
    app.db
        .read(|c| alerts::list(c, AlertFilter::default(), Page::FIRST))
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.kind == kind)
        .collect()
}

fn position(page: &str, needle: &str) -> usize {
    page.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} missing from the page:\n{page}"))
}

fn scan_page_tells_the_whole_story(d: Demo) {
    let app = &d.app;
    let path = format!("/{}", d.labels[2].1);
    let zh = page(app, &path);
    assert!(
        zh.len() < 30_000,
        "HTML and CSS of the page without photos: {} bytes",
        zh.len()
    );
    // In order of importance: verdict, product and producer, farming, inspections, photos and
    // temperatures, journey.
    let order = [
        "id=\"verdict\"",
        "id=\"product\"",
        "id=\"farming\"",
        "class=\"card inspection\"",
        "id=\"photos\"",
        "id=\"temperatures\"",
        "id=\"journey\"",
    ]
    .map(|n| position(&zh, n));
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    for expected in [
        "<h1>正品</h1>",
        "这是此标签的首次查询",
        "华宁柑橘礼盒",
        "华宁橘乡",
        "绿色食品",
        "农产品地理标志",
        "云南华宁果品加工有限公司",
        "华宁县青龙镇柑橘种植专业合作社",
        "海镜村",
        "0877-5034567",
        // The farming of the batches the gift boxes came from, with the pesticide checked.
        "HN-2026-QL-001",
        "阿维菌素",
        "PD20080001",
        "安全间隔期 14 天 · 施药后第 27 天采收，已遵守",
        // The dose typed wrong and corrected.
        "已更正",
        "剂量录入错误，实际为30毫升/亩",
        "30 ml/亩",
        // Inspections with items, limits and results.
        "有机磷和氨基甲酸酯类农药（酶抑制率）",
        "限量 50 %",
        "0.002 mg/kg",
        "合格",
        // Cold store and journey.
        "1号冷库",
        "<svg",
        "瓦楞纸礼盒 × 3000",
        "分级拆分",
    ] {
        assert!(zh.contains(expected), "{expected:?} missing:\n{zh}");
    }
    assert!(!zh.contains("40 ml/亩 · 防治红蜘蛛</div><div class=\"sub\">农药登记证号 PD20080001</div><div class=\"sub ok\">安全间隔期 14 天 · 施药后第 27 天采收，已遵守</div><span"));
    // Photos of the plot: thumbnails that open the full photo; only the story's photos are public.
    let thumb = zh
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        thumb.starts_with(&format!("/b/{}/photos/", d.batch.0)),
        "{thumb}"
    );
    let (status, ctype, jpeg) = app.fetch(&thumb, None, None);
    assert_eq!((status, ctype.as_str()), (200, "image/jpeg"));
    assert!(image::load_from_memory(&jpeg).is_ok());
    let full = thumb.trim_end_matches("/thumb");
    let (status, _, original) = app.fetch(full, None, None);
    assert_eq!(status, 200);
    assert!(original.len() > jpeg.len());
    assert_eq!(
        app.fetch(&format!("/b/{}/photos/999999", d.batch.0), None, None)
            .0,
        404
    );
    assert_eq!(
        app.fetch(
            &thumb.replace(&format!("/b/{}/", d.batch.0), "/b/999999/"),
            None,
            None
        )
        .0,
        404,
        "a photo is public only through a story that shows it"
    );

    // English, remembered by a cookie; and the scan count once the first scan is stored.
    app.flush_scans();
    let en = page(app, &format!("{path}?lang=en"));
    for expected in [
        "<h1>Genuine</h1>",
        "Farming record",
        "Pre-harvest interval 14 days · harvested 27 days after spraying: respected",
        "Inspections",
        "Cold-store temperature",
        "Journey",
        "looked up 2 times from 1 devices",
    ] {
        assert!(en.contains(expected), "{expected:?} missing:\n{en}");
    }
    // Every view is a scan: two stored, the first flagged as the first.
    app.flush_scans();
    let first: Vec<bool> = app
        .db
        .read(|c| {
            use diesel::prelude::*;
            use suyuan_core::schema::scans::dsl as s;
            Ok(suyuan_core::on_backend!(c, c => s::scans.order(s::id).select(s::first_scan).load::<bool>(c))?)
        })
        .unwrap();
    assert_eq!(first, vec![true, false]);
}

fn scan_page_shows_nothing_private(d: Demo) {
    let app = &d.app;
    let private: Vec<String> = {
        let mut v: Vec<String> = [
            // Account names and display names of the demo county's people.
            "farmer",
            "processor",
            "inspector",
            "coldstore",
            "regulator",
            "operator",
            "张建华",
            "王加工",
            "赵检测",
            "陈冷链",
            "李监管",
            "运营管理员",
            // Personal phone numbers.
            "13800000001",
            "13800000002",
            "13800000003",
            "13800000004",
            "13800000005",
        ]
        .map(str::to_owned)
        .to_vec();
        // Every organisation's unified social credit code.
        let codes: Vec<Option<String>> = app
            .db
            .read(|c| {
                use diesel::prelude::*;
                use suyuan_core::schema::organisations::dsl as o;
                Ok(suyuan_core::on_backend!(c, c => o::organisations.select(o::credit_code).load(c))?)
            })
            .unwrap();
        v.extend(codes.into_iter().flatten());
        v
    };
    assert!(private.len() > 20);
    for path in [
        format!("/{}", d.labels[0].1),
        format!("/{}?lang=en", d.labels[0].1),
        format!("/c?code={}", d.labels[1].0.replace(' ', "")),
        "/01/06901234567892/10/LH-2026-1116"
            .replace("2026", &chrono::Utc::now().format("%Y").to_string()),
    ] {
        let body = page(app, &path).to_lowercase();
        for p in &private {
            assert!(
                !body.contains(&p.to_lowercase()),
                "{path} shows the private {p:?}"
            );
        }
    }
}

fn many_devices_rule(d: Demo) {
    let app = &d.app;
    let (copied, honest) = (format!("/{}", d.labels[3].1), format!("/{}", d.labels[4].1));
    // Five phones of a neighbourhood, each again and again: not suspicious.
    for i in 0..10 {
        scan(app, &honest, &format!("10.1.0.{}", 1 + i % 5), "phone");
    }
    assert!(alerts_of(app, "label_many_devices").is_empty());
    assert!(!scan(app, &honest, "10.1.0.1", "phone")
        .1
        .contains("疑似被复制"));
    // One phone whose browser says something else each time (another app, an update, a script): still
    // one device, no alert.
    let one_phone = format!("/{}", d.labels[13].1);
    for i in 0..10 {
        scan(app, &one_phone, KUNMING, &format!("browser-{i}"));
    }
    assert!(
        alerts_of(app, "label_many_devices").is_empty(),
        "a changed User-Agent is not another device"
    );
    let shown = page(app, &one_phone);
    assert!(!shown.contains("疑似被复制"), "{shown}");
    assert!(shown.contains("来自 1 台设备"), "{shown}");
    // A copied label: the sixth distinct device trips the rule (more than 5), once.
    for i in 0..8 {
        scan(app, &copied, &format!("10.1.1.{i}"), "phone");
    }
    let found = alerts_of(app, "label_many_devices");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].batch_id, Some(d.batch));
    assert!(
        found[0].message.contains(&d.labels[3].0),
        "{}",
        found[0].message
    );
    assert!(found[0].org_id.is_some(), "the label's owner sees it");
    let shown = page(app, &copied);
    assert!(shown.contains("正品 · 疑似被复制"), "{shown}");
    assert!(shown.contains("共被查询 9 次，来自 8 台设备"), "{shown}");
    assert!(shown.contains("昆明市"), "{shown}");
}

fn impossible_travel_rule(d: Demo) {
    let app = &d.app;
    // Kunming then Yuxi (about 80 km) within a minute: neighbouring regions, not travel.
    let near = format!("/{}", d.labels[5].1);
    scan(app, &near, KUNMING, "a");
    app.flush_scans();
    scan(app, &near, YUXI, "a");
    assert!(alerts_of(app, "label_impossible_travel").is_empty());
    // Kunming then Beijing (about 2,100 km) within a minute: the same label cannot be in both.
    let far = format!("/{}", d.labels[6].1);
    scan(app, &far, KUNMING, "a");
    app.flush_scans();
    scan(app, &far, BEIJING, "b");
    let found = alerts_of(app, "label_impossible_travel");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("北京"), "{}", found[0].message);
    assert!(page(app, &far).contains("相距很远"));
}

fn outside_area_rule(d: Demo) {
    let app = &d.app;
    // The gift boxes are sold in Yunnan (53), Guangdong (44) and Shanghai (31).
    scan(app, &format!("/{}", d.labels[7].1), KUNMING, "a");
    scan(app, &format!("/{}", d.labels[8].1), GUANGZHOU, "a");
    assert!(alerts_of(app, "label_outside_area").is_empty());
    scan(app, &format!("/{}", d.labels[9].1), BEIJING, "a");
    let found = alerts_of(app, "label_outside_area");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.contains("北京市朝阳区"),
        "{}",
        found[0].message
    );

    // The phone's shared location (rounded to about 10 km) counts too: Harbin, far outside.
    let located = &d.labels[10].1;
    scan(app, &format!("/{located}"), KUNMING, "c");
    // Sent by the same phone (address and browser) that opened the page.
    let status = ureq::post(&app.url("/api/v1/scans/location"))
        .set("X-Forwarded-For", KUNMING)
        .set("User-Agent", "c")
        .send_json(json!({"code": located, "latitude": 45.8038, "longitude": 126.5349}))
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(alerts_of(app, "label_outside_area").len(), 2);
    let stored: Vec<(Option<String>, Option<f64>)> = app
        .db
        .read(|c| {
            use diesel::prelude::*;
            use suyuan_core::schema::scans::dsl as s;
            Ok(suyuan_core::on_backend!(c, c => s::scans
                .filter(s::region_source.eq("location"))
                .select((s::division_code, s::latitude))
                .load(c))?)
        })
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].0.as_deref().unwrap().starts_with("2301"),
        "{stored:?}"
    );
    assert_eq!(stored[0].1, Some(45.8), "kept to about 10 km only");
    // Bad locations are refused and change nothing.
    for (lat, lon) in [(f64::MAX, 1.0), (0.0, -150.0)] {
        let (status, e) = app.post(
            "/api/v1/scans/location",
            None,
            &json!({"code": located, "latitude": lat, "longitude": lon}),
        );
        assert_eq!(
            (status, e["error"].as_str()),
            (422, Some("invalid_location")),
            "{e}"
        );
    }
    let (status, e) = app.post(
        "/api/v1/scans/location",
        None,
        &json!({"code": "12345", "latitude": 25.0, "longitude": 102.7}),
    );
    assert_eq!(
        (status, e["error"].as_str()),
        (422, Some("label_not_genuine")),
        "{e}"
    );
}

fn never_minted_and_not_activated_rules(d: Demo) {
    let app = &d.app;
    // Genuine, active labels open neither alert.
    scan(app, &format!("/{}", d.labels[11].1), KUNMING, "a");
    assert!(alerts_of(app, "label_not_activated").is_empty());
    assert!(alerts_of(app, "label_never_minted").is_empty());
    // A printed label not yet bound to a batch, scanned by a consumer: a print overrun or a missed bind.
    scan(app, &format!("/{}", d.unactivated), KUNMING, "a");
    scan(app, &format!("/{}", d.unactivated), KUNMING, "b");
    let found = alerts_of(app, "label_not_activated");
    assert_eq!(found.len(), 1, "once per label: {found:?}");
    // A serial the platform never minted, validly signed: the signing key has leaked.
    let key = KeyStore::in_data_dir(app.data_dir.path())
        .load(KeyId::new(1).unwrap())
        .unwrap();
    let serial = LabelSerial::new(key.id(), 9_000_000).unwrap();
    let leaked = LabelCode::mint(&key, serial).unwrap().to_url("t.cn");
    let digits = leaked.rsplit('/').next().unwrap();
    let shown = page(app, &format!("/{digits}"));
    assert!(shown.contains("可疑标签"), "{shown}");
    let found = alerts_of(app, "label_never_minted");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].severity, "critical");
    assert_eq!(found[0].org_id, None, "for the regulator");
    // A voided label on sale.
    scan(app, &format!("/{}", d.void), KUNMING, "a");
    assert_eq!(alerts_of(app, "void_label_scanned").len(), 1);

    // The one-statement read agrees with the batch and the scan statistics.
    for digits in [&d.labels[11].1, &d.unactivated, &d.void, &digits.to_owned()] {
        let code = LabelCode::parse(digits).unwrap();
        let label = suyuan_core::model::LabelRef {
            key_id: i64::from(code.serial().key_id().get()),
            sequence: i64::try_from(code.serial().sequence()).unwrap(),
        };
        let (one, lookup, status, stats) = app
            .db
            .read(|c| {
                let one = suyuan_core::store::labels::lookup_for_scan(c, label)?;
                let lookup = suyuan_core::store::labels::lookup(c, label)?;
                let status = match lookup.batch_id {
                    Some(b) => Some(suyuan_core::store::batches::get(c, b)?.status),
                    None => None,
                };
                Ok((one, lookup, status, scans::stats(c, label)?))
            })
            .unwrap();
        assert_eq!(one.lookup, lookup);
        assert_eq!(one.batch_status, status);
        assert_eq!(one.stats, stats);
    }
}

fn forgeries_are_counted_by_region(d: Demo) {
    let app = &d.app;
    let forge = |i: usize| {
        let mut b = d.labels[i].1.clone().into_bytes();
        let last = b.len() - 1;
        b[last] = if b[last] == b'0' { b'1' } else { b'0' };
        String::from_utf8(b).unwrap()
    };
    // Genuine scans open no forgery alert.
    scan(app, &format!("/{}", d.labels[12].1), BEIJING, "a");
    assert!(alerts_of(app, "forgery_attempts").is_empty());
    for (i, ip) in [(13, KUNMING), (14, KUNMING), (15, KUNMING), (16, BEIJING)] {
        let (status, body) = scan(app, &format!("/{}", forge(i)), ip, "x");
        assert_eq!(status, 200);
        assert!(body.contains("假冒标签"));
    }
    // One alert per region and day, for regulators; counts by region through the API.
    let found = alerts_of(app, "forgery_attempts");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|a| a.org_id.is_none()));
    let token = login(app, "regulator");
    let (status, v) = app.get("/api/v1/scans/regions", Some(&token));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["forgeries_by_region"][0],
        json!(["530102", "云南省昆明市五华区", 3]),
        "{v}"
    );
    assert_eq!(
        v["forgeries_by_region"][1],
        json!(["110105", "北京市朝阳区", 1]),
        "{v}"
    );
    let genuine_beijing = v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["division_code"] == "110105" && c["verdict"] == "active")
        .cloned();
    assert_eq!(
        genuine_beijing.map(|c| c["scans"].clone()),
        Some(json!(1)),
        "{v}"
    );
    // Others may not see the county's scans; bad dates are refused.
    let farmer = login(app, "farmer");
    assert_eq!(app.get("/api/v1/scans/regions", Some(&farmer)).0, 403);
    let (status, e) = app.get("/api/v1/scans/regions?from=yesterday", Some(&token));
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_query")));
}

fn login(app: &TestApp, username: &str) -> String {
    let (status, v) = app.post(
        "/api/v1/auth/login",
        None,
        &json!({"username": username, "password": suyuan_server::demo::DEMO_PASSWORD}),
    );
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

fn every_scan_is_stored_under_load(d: Demo) {
    let app = &d.app;
    let before = app.db.read(scans::count).unwrap();
    let threads = 6;
    let per_thread = 60;
    let served: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let labels = &d.labels;
                s.spawn(move || {
                    (0..per_thread)
                        .filter(|i| {
                            let (status, _) = scan(
                                app,
                                &format!("/{}", labels[(t * per_thread + i) % 24].1),
                                GUANGZHOU,
                                &format!("load-{t}"),
                            );
                            status == 200
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(served, threads * per_thread);
    app.flush_scans();
    let stored = app.db.read(scans::count).unwrap() - before;
    assert_eq!(stored, served as i64, "requests served versus scans stored");
    let stats = app.scanning.log.stats();
    assert_eq!(
        stats.queued.load(std::sync::atomic::Ordering::Relaxed),
        stats.stored.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn short_code_kiosk_and_sms(d: Demo) {
    let app = &d.app;
    let (short, _) = &d.labels[17];
    let typed: String = short.chars().filter(char::is_ascii_digit).collect();
    // Typed on the page (with the spaces as printed).
    let shown = page(app, &format!("/c?code={}", short.replace(' ', "+")));
    assert!(
        shown.contains("<h1>正品</h1>") && shown.contains("华宁柑橘礼盒"),
        "{shown}"
    );
    let mut wrong = typed.clone().into_bytes();
    wrong[3] = if wrong[3] == b'9' { b'8' } else { b'9' };
    let shown = page(
        app,
        &format!("/c?code={}", String::from_utf8(wrong).unwrap()),
    );
    assert!(shown.contains("没有这个追溯码"), "{shown}");

    // The kiosk: digits entered key by key, grouped as printed; the result has a way back and resets.
    let keypad = page(
        app,
        &format!("/kiosk?entered={}&key={}", &typed[..12], &typed[12..]),
    );
    assert!(keypad.contains(&format!(">{short}</div>")), "{keypad}");
    assert!(keypad.contains("http-equiv=\"refresh\" content=\"60;url=/kiosk\""));
    assert!(page(app, "/kiosk?entered=123&key=del").contains(">12</div>"));
    assert!(page(app, "/kiosk?entered=123&key=clear")
        .contains("class=\"entered\" aria-live=\"polite\"></div>"));
    assert!(page(app, "/kiosk?entered=12345678901234567&key=x").contains(">1234 5678 90123</div>"));
    let result = page(app, &format!("/kiosk?entered={typed}&key=go"));
    assert!(
        result.contains("<h1>正品</h1>") && result.contains("href=\"/kiosk\""),
        "{result}"
    );
    assert!(result.contains("content=\"60;url=/kiosk\""));
    assert!(
        !result.contains("action=\"/c\""),
        "no phone lookup form on the kiosk"
    );

    // SMS: the provider proves itself; the reply is a short text.
    let sms = |token: Option<&str>, ctype: &str, body: &str| {
        let mut req = ureq::post(&app.url("/api/v1/sms/inbound")).set("Content-Type", ctype);
        if let Some(t) = token {
            req = req.set("X-Suyuan-Sms-Token", t);
        }
        match req.send_string(body) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let body = json!({"from": "13912345678", "text": format!("查询 {short}")}).to_string();
    assert_eq!(sms(None, "application/json", &body).0, 401);
    assert_eq!(sms(Some("wrong"), "application/json", &body).0, 401);
    let (status, reply) = sms(Some(SMS_TOKEN), "application/json", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.starts_with("【溯源】") && reply.contains("正品") && reply.contains("华宁柑橘礼盒"),
        "{reply}"
    );
    assert!(reply.chars().count() <= 140, "{reply}");
    app.flush_scans();
    let (status, reply) = sms(
        Some(SMS_TOKEN),
        "application/x-www-form-urlencoded",
        &format!("mobile=13912345678&content={typed}"),
    );
    assert_eq!(status, 200);
    // Typed on the page, at the kiosk, by SMS: this is the fourth lookup of the label.
    assert!(reply.contains("第4次查询"), "{reply}");
    let (_, reply) = sms(
        Some(SMS_TOKEN),
        "application/json",
        &json!({"from": "1", "text": "你好"}).to_string(),
    );
    assert!(reply.contains("13位追溯码"), "{reply}");
    let (_, reply) = sms(
        Some(SMS_TOKEN),
        "application/json",
        &json!({"from": "1", "text": "what is 1234 5678 90123"}).to_string(),
    );
    assert!(reply.starts_with("[Suyuan] No such code"), "{reply}");
    let (status, e) = sms(Some(SMS_TOKEN), "application/json", "{not json");
    assert_eq!(status, 400, "{e}");
    app.flush_scans();
    let methods: HashSet<String> = app
        .db
        .read(|c| {
            use diesel::prelude::*;
            use suyuan_core::schema::scans::dsl as s;
            Ok(suyuan_core::on_backend!(c, c => s::scans.select(s::method).load::<String>(c))?)
        })
        .unwrap()
        .into_iter()
        .collect();
    for m in ["short_code", "kiosk", "sms"] {
        assert!(methods.contains(m), "{methods:?}");
    }
    // Without a configured token the webhook does not exist.
    let plain = TestApp::start(d.backend).unwrap();
    let (status, _) = plain.call_raw(
        "POST",
        "/api/v1/sms/inbound",
        None,
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 404);
}

fn gs1_digital_link(d: Demo) {
    let app = &d.app;
    let year = chrono::Utc::now().format("%Y").to_string();
    let link = format!("/01/06901234567892/10/LH-{year}-1116");
    let shown = page(app, &link);
    assert!(shown.contains("批次信息（未验证单个标签）"), "{shown}");
    assert!(
        shown.contains("华宁柑橘礼盒") && shown.contains("种植记录"),
        "{shown}"
    );
    // The 13-digit GTIN works as well; other lots and products are not found.
    assert_eq!(
        app.fetch(&format!("/01/6901234567892/10/LH-{year}-1116"), None, None)
            .0,
        200
    );
    assert_eq!(
        app.fetch("/01/06901234567892/10/NO-SUCH-LOT", None, None).0,
        404
    );
    assert_eq!(
        app.fetch(&format!("/01/06901234567893/10/LH-{year}-1116"), None, None)
            .0,
        404
    );
    let (status, ctype, body) = app.fetch(&link, None, Some("application/linkset+json"));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/linkset+json"), "{ctype}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    let set = &v["linkset"][0];
    assert!(set["anchor"].as_str().unwrap().ends_with(&link), "{v}");
    // Every link is on the configured public host, whatever Host header the request carried.
    let forged: Value = ureq::get(&app.url(&link))
        .set("Accept", "application/linkset+json")
        .set("Host", "evil.example")
        .set("X-Forwarded-Host", "evil.example")
        .set("X-Forwarded-Proto", "http")
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(
        forged, v,
        "the linkset does not depend on the request's Host"
    );
    let anchor = set["anchor"].as_str().unwrap();
    assert_eq!(anchor, format!("https://t.cn{link}"), "{v}");
    for kind in ["defaultLink", "traceability", "recallStatus"] {
        let href = set[format!("https://gs1.org/voc/{kind}")][0]["href"]
            .as_str()
            .unwrap();
        assert!(href.starts_with("https://t.cn/"), "{kind}: {href}");
    }
    let trace = set["https://gs1.org/voc/traceability"][0]["href"]
        .as_str()
        .unwrap();
    assert!(
        trace.ends_with(&format!("/api/v1/public/batches/{}", d.batch.0)),
        "{v}"
    );
    let recall = set["https://gs1.org/voc/recallStatus"][0]["href"]
        .as_str()
        .unwrap();
    let path = &recall[recall.find("/api/").unwrap()..];
    let (status, r) = app.get(path, None);
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["recalled"].clone(), r["status"].clone()),
        (json!(false), json!("open"))
    );
    // After a recall the batch page says so at once, with the reason.
    let token = login(app, "regulator");
    let (status, r) = app.post(
        &format!("/api/v1/batches/{}/recall", d.batch.0),
        Some(&token),
        &json!({"reason": "农残超标"}),
    );
    assert_eq!(status, 200, "{r}");
    let shown = page(app, &link);
    assert!(
        shown.contains("<h1>已召回</h1>") && shown.contains("农残超标"),
        "{shown}"
    );
    let label = page(app, &format!("/{}", d.labels[20].1));
    assert!(
        label.contains("<h1>已召回</h1>") && label.contains("请勿食用"),
        "{label}"
    );
    assert_eq!(app.get(path, None).1["recalled"], json!(true));
}

/// Out of the box (no IP-to-region file), a scan from a public address is placed by the built-in
/// ip2region database: stored with its city and `region_source` `ip2region`, counted by region, seen by
/// the rules; a location the phone shares still replaces it; foreign and private addresses stay unknown.
fn the_built_in_ip2region_database_places_public_addresses(backend: Backend) {
    let settings = ScanSettings {
        trusted_proxies: suyuan_server::extract::TrustedProxies::parse("127.0.0.1").unwrap(),
        ..Default::default()
    };
    assert_eq!(settings.ip_regions, IpRegionSetting::Builtin);
    let Some(d) = demo_on(backend, settings, None) else {
        return;
    };
    let app = &d.app;
    // Addresses whose ranges the data places (`中国|0|云南省|昆明市|电信`, `中国|0|江苏省|南京市|0`;
    // the unit tests in suyuan-core check them against the file), a foreign one and a private one.
    const KUNMING_TELECOM: &str = "222.172.200.68";
    const NANJING: &str = "114.114.114.114";
    let kunming = format!("/{}", d.labels[2].1);
    let nanjing = format!("/{}", d.labels[3].1);
    let abroad = format!("/{}", d.labels[4].1);
    let located = format!("/{}", d.labels[5].1);
    assert_eq!(scan(app, &kunming, KUNMING_TELECOM, "a").0, 200);
    assert_eq!(scan(app, &nanjing, NANJING, "b").0, 200);
    assert_eq!(scan(app, &abroad, "8.8.8.8", "c").0, 200);
    assert_eq!(scan(app, &abroad, "10.1.0.7", "c").0, 200);
    assert_eq!(scan(app, &located, KUNMING_TELECOM, "d").0, 200);
    // The phone that opened the last page shares its location, in Harbin: it wins over the address.
    let status = ureq::post(&app.url("/api/v1/scans/location"))
        .set("X-Forwarded-For", KUNMING_TELECOM)
        .set("User-Agent", "d")
        .send_json(json!({"code": &located[1..], "latitude": 45.8038, "longitude": 126.5349}))
        .unwrap()
        .status();
    assert_eq!(status, 204);
    // A forged code from Kunming is counted there.
    let mut forged = d.labels[6].1.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        scan(app, &format!("/{forged}"), KUNMING_TELECOM, "e").0,
        200
    );
    app.flush_scans();

    let rows: Vec<(Option<String>, Option<String>)> = app
        .db
        .read(|c| {
            use diesel::prelude::*;
            use suyuan_core::schema::scans::dsl as s;
            Ok(suyuan_core::on_backend!(c, c => s::scans
                .order(s::id)
                .select((s::division_code, s::region_source))
                .load(c))?)
        })
        .unwrap();
    let pair = |code: &str, source: &str| (Some(code.to_owned()), Some(source.to_owned()));
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[0], pair("530100", "ip2region"), "{rows:?}");
    assert_eq!(rows[1], pair("320100", "ip2region"), "{rows:?}");
    assert_eq!(rows[2], (None, None), "8.8.8.8 is not in China: {rows:?}");
    assert_eq!(rows[3], (None, None), "a private address: {rows:?}");
    assert_eq!(rows[4].1.as_deref(), Some("location"), "{rows:?}");
    assert!(
        rows[4].0.as_deref().unwrap().starts_with("2301"),
        "{rows:?}"
    );
    assert_eq!(rows[5], pair("530100", "ip2region"), "{rows:?}");

    // The regional counts name the cities; the forgery is counted in Kunming.
    let token = login(app, "regulator");
    let (status, v) = app.get("/api/v1/scans/regions", Some(&token));
    assert_eq!(status, 200, "{v}");
    let count = |code: &str, verdict: &str| {
        v["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["division_code"] == code && c["verdict"] == verdict)
            .map(|c| (c["scans"].clone(), c["region_name"].clone()))
    };
    // Kunming counts the first page of the located label too: counts are taken as scans arrive.
    assert_eq!(
        count("530100", "active"),
        Some((json!(2), json!("云南省昆明市"))),
        "{v}"
    );
    assert_eq!(
        count("320100", "active"),
        Some((json!(1), json!("江苏省南京市"))),
        "{v}"
    );
    assert_eq!(count("", "active").map(|c| c.0), Some(json!(2)), "{v}");
    assert_eq!(
        v["forgeries_by_region"],
        json!([["530100", "云南省昆明市", 1]]),
        "{v}"
    );
    // The rules see the region: the gift boxes are not sold in Jiangsu.
    let outside = alerts_of(app, "label_outside_area");
    assert!(
        outside.iter().any(|a| a.message.contains("江苏省南京市")),
        "{outside:?}"
    );
}

#[test]
fn the_built_in_ip2region_database_places_public_addresses_on_sqlite() {
    the_built_in_ip2region_database_places_public_addresses(Backend::Sqlite);
}

#[test]
fn the_built_in_ip2region_database_places_public_addresses_on_postgres() {
    the_built_in_ip2region_database_places_public_addresses(Backend::Postgres);
}

/// Without a trusted proxy, `X-Forwarded-For` is whatever the client wrote: one client claiming ten
/// addresses is one device, and no "copied label" alert is raised.
fn forwarded_addresses_from_an_untrusted_peer_are_one_device(backend: Backend) {
    let Some(d) = demo_with(backend, Default::default()) else {
        return;
    };
    let label = format!("/{}", d.labels[5].1);
    for i in 0..10 {
        scan(&d.app, &label, &format!("10.9.0.{i}"), "phone");
    }
    assert!(alerts_of(&d.app, "label_many_devices").is_empty());
    let shown = page(&d.app, &label);
    assert!(shown.contains("来自 1 台设备"), "{shown}");
}

#[test]
fn forwarded_addresses_from_an_untrusted_peer_are_one_device_on_sqlite() {
    forwarded_addresses_from_an_untrusted_peer_are_one_device(Backend::Sqlite);
}

#[test]
fn forwarded_addresses_from_an_untrusted_peer_are_one_device_on_postgres() {
    forwarded_addresses_from_an_untrusted_peer_are_one_device(Backend::Postgres);
}
