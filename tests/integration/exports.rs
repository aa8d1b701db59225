//! Exports: a batch's trace as CSV (what Excel needs to open it in Chinese), XLSX (read back) and EPCIS 2.0
//! (validated against GS1's schema); who may export what; bad requests; a 100,000-event period written in
//! the background with its progress.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
use chrono::Utc;
use serde_json::{json, Value};
use suyuan_core::model::*;
use suyuan_core::store::bulk::{self, BulkBatch, BulkLoad, BulkRecord};

use crate::support::{cid, days_ago, TestApp, World};

crate::both_backends!(
    trace_export_as_csv_xlsx_and_epcis,
    exports_answer_each_role_as_designed,
    bad_export_requests_have_stable_codes,
    a_100000_event_period_is_exported_in_the_background
);

/// The GS1 EPCIS 2.0 JSON schema, kept in the repository (see `tests/data/gs1/README.md`).
const EPCIS_SCHEMA: &str = include_str!("../data/gs1/epcis-2.0-json-schema.json");

/// The CSV's first columns, as the header names them.
const CSV_HEADER_START: &str =
    "事件类型 Event type,事件 Event,关键追溯事件 FSMA CTE,追溯批次号 Traceability lot code,";

struct Story {
    /// The cooperative's lot (QL-001), harvested as 2000 斤, with a corrected note.
    a: i64,
    /// The second lot (QL-002), merged with the first.
    b: i64,
    /// The merged juice (M-1).
    m: i64,
}

fn record(app: &TestApp, token: &str, batch: i64, body: &Value) -> Value {
    let (s, r) = app.post(
        &format!("/api/v1/batches/{batch}/records"),
        Some(token),
        body,
    );
    assert_eq!(s, 201, "{r}");
    r
}

fn event(days: i64, details: Value) -> Value {
    json!({ "client_id": cid(), "event_time": days_ago(days), "details": details })
}

fn ship_and_receive(app: &TestApp, w: &World, batch: i64) {
    record(
        app,
        &w.farmer.token,
        batch,
        &event(
            3,
            json!({ "kind": "shipping", "to_org_id": w.processor_org, "to_site_id": w.line, "carrier": "顺丰冷链" }),
        ),
    );
    record(
        app,
        &w.processor.token,
        batch,
        &json!({ "client_id": cid(), "event_time": days_ago(2), "site_id": w.line, "details": { "kind": "receiving", "condition": "完好" } }),
    );
}

/// Spraying, a harvest in 斤, a corrected note, shipping and receipt of two lots, their merge into juice,
/// and the juice packed in boxes.
fn story(app: &TestApp, w: &World) -> Story {
    let a = w.batch.0;
    record(
        app,
        &w.farmer.token,
        a,
        &json!({ "client_id": cid(), "event_time": days_ago(40), "site_id": w.plot, "details": {
            "kind": "spraying", "pesticide_name": "阿维菌素", "registration_number": "PD20080001",
            "active_ingredient": "阿维菌素 1.8%", "dose": 30.0, "dose_unit": "ml/亩", "pre_harvest_interval_days": 14 } }),
    );
    record(
        app,
        &w.farmer.token,
        a,
        &event(
            20,
            json!({ "kind": "harvest", "quantity": 2000.0, "unit": "斤" }),
        ),
    );
    let note = record(
        app,
        &w.farmer.token,
        a,
        &event(19, json!({ "kind": "note", "text": "采前巡园" })),
    );
    record(
        app,
        &w.farmer.token,
        a,
        &event(
            19,
            json!({ "kind": "correction", "supersedes": note["id"], "reason": "错别字",
                    "replacement": { "kind": "note", "text": "采前巡园，果面良好" } }),
        ),
    );
    let irrigation = record(
        app,
        &w.farmer.token,
        a,
        &event(30, json!({ "kind": "irrigation", "method": "滴灌" })),
    );
    record(
        app,
        &w.farmer.token,
        a,
        &event(
            19,
            json!({ "kind": "correction", "supersedes": irrigation["id"], "reason": "记错了批次" }),
        ),
    );
    let (s, b) = app.post(
        "/api/v1/batches",
        Some(&w.farmer.token),
        &json!({ "product_id": w.citrus, "lot_code": "QL-002", "quantity": 500.0, "unit": "kg", "origin_site_id": w.plot }),
    );
    assert_eq!(s, 201, "{b}");
    let b = b["id"].as_i64().unwrap();
    record(
        app,
        &w.farmer.token,
        b,
        &event(
            18,
            json!({ "kind": "harvest", "quantity": 500.0, "unit": "kg" }),
        ),
    );
    ship_and_receive(app, w, a);
    ship_and_receive(app, w, b);
    let (s, merge) = app.post(
        "/api/v1/transformations",
        Some(&w.processor.token),
        &json!({
            "client_id": cid(), "kind": "merge", "event_time": days_ago(1), "site_id": w.line,
            "inputs": [{ "batch_id": a, "quantity": 1000.0 }, { "batch_id": b, "quantity": 500.0 }],
            "outputs": [{ "product_id": w.juice, "lot_code": "M-1", "quantity": 900.0, "unit": "L" }]
        }),
    );
    assert_eq!(s, 201, "{merge}");
    let m = merge["outputs"][0]["id"].as_i64().unwrap();
    record(
        app,
        &w.processor.token,
        m,
        &event(
            0,
            json!({ "kind": "packing", "package_type": "箱", "package_count": 100, "net_quantity_per_package": 9.0, "unit": "L" }),
        ),
    );
    Story { a, b, m }
}

fn csv_rows(body: &[u8]) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .from_reader(&body[3..])
        .records()
        .map(|r| r.expect("a CSV row"))
        .collect()
}

fn column(name: &str) -> usize {
    suyuan_core::export::rows::COLUMNS
        .iter()
        .position(|c| c.header.starts_with(name))
        .unwrap_or_else(|| panic!("column {name}"))
}

fn epcis_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(EPCIS_SCHEMA).expect("the schema is JSON");
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("GS1's schema compiles")
}

fn assert_valid_epcis(doc: &Value) {
    let validator = epcis_validator();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the EPCIS document is invalid: {errors:#?}"
    );
}

fn trace_export_as_csv_xlsx_and_epcis(app: TestApp) {
    let w = World::build(&app);
    let s = story(&app, &w);
    let path = |format: &str| format!("/api/v1/batches/{}/export?format={format}", s.a);
    let reg = Some(w.regulator.token.as_str());

    // CSV: a byte-order mark, the header, CRLF line ends, Chinese intact.
    let (status, content_type, body) = app.fetch(&path("csv"), reg, None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(
        &body[..3],
        b"\xEF\xBB\xBF",
        "Excel needs the BOM to read UTF-8"
    );
    let text = std::str::from_utf8(&body[3..]).expect("UTF-8");
    assert!(text.starts_with(CSV_HEADER_START), "{}", &text[..200]);
    let lines = text.split("\r\n").filter(|l| !l.is_empty()).count();
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "every line ends in CRLF"
    );
    assert!(
        text.contains("华宁柑橘（青龙，水果）"),
        "the product's Chinese name is intact"
    );
    let rows = csv_rows(&body);
    // The lot's spraying, irrigation (retracted), harvest, note, shipping and receipt; the merged juice's
    // transformation and packing. The other input lot is not on this lot's trace.
    assert_eq!(rows.len(), 8, "{text}");
    assert_eq!(lines, 9);
    let find = |event_type: &str| {
        rows.iter()
            .find(|r| &r[0] == event_type)
            .unwrap_or_else(|| panic!("a {event_type} row in {text}"))
    };
    let harvest = find("harvesting");
    assert_eq!(&harvest[column("数量")], "2000");
    assert_eq!(&harvest[column("单位")], "斤");
    assert_eq!(&harvest[column("地点 Location")], "1号地块");
    assert_eq!(&harvest[column("追溯批次号")], "QL-001");
    assert_eq!(&harvest[column("关键追溯事件")], "是 yes");
    assert!(harvest[column("发生时间")].ends_with("+08:00"));
    let note = find("note");
    assert_eq!(&note[column("详情")], "采前巡园，果面良好");
    assert_eq!(&note[column("更正状态")], "已更正 corrected");
    assert!(note[column("更正原因")].contains("错别字"));
    assert_eq!(note[column("记录哈希")].len(), 64);
    let retracted = find("irrigation");
    assert_eq!(&retracted[column("更正状态")], "已撤销 retracted");
    assert!(retracted[column("详情")].starts_with("已撤销："));
    assert!(retracted[column("更正原因")].contains("记错了批次"));
    let receipt = find("receiving");
    assert!(receipt[column("发货地")].contains("青龙柑橘合作社"));
    assert!(receipt[column("收货地")].contains("包装线"));
    assert!(receipt[column("收货地")].contains("果品加工厂"));
    let merged = find("transformation");
    assert_eq!(&merged[column("追溯批次号")], "M-1");
    assert_eq!(&merged[column("产品")], "柑橘汁（饮料）");
    assert_eq!(&merged[column("数量")], "900");
    assert_eq!(&merged[column("投入批次")], "QL-001 1000 kg；QL-002 500 kg");
    assert_eq!(&find("packing")[column("单位")], "箱");
    // Sorted by event time.
    let times: Vec<&str> = rows.iter().map(|r| &r[column("发生时间")]).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted);

    // XLSX: the same rows, read back from the workbook.
    let (status, content_type, body) = app.fetch(&path("xlsx"), reg, None);
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    // The sheet's own settings: the header row frozen, a filter (sort) over every column and row.
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&body)).expect("a zip container");
    let mut sheet_xml = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("xl/worksheets/sheet1.xml").expect("the sheet"),
        &mut sheet_xml,
    )
    .unwrap();
    assert!(
        sheet_xml.contains(
            r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#
        ),
        "{}",
        &sheet_xml[..600]
    );
    assert!(
        sheet_xml.contains(r#"<autoFilter ref="A1:W9"/>"#),
        "{}",
        &sheet_xml[..600]
    );
    assert!(
        sheet_xml.contains(r#"<col min="17" max="17" width="48.7109375""#),
        "column widths: {}",
        &sheet_xml[..900]
    );
    let mut book: Xlsx<_> =
        open_workbook_from_rs(std::io::Cursor::new(body)).expect("an XLSX workbook");
    let sheet = book.worksheet_range("追溯事件 Events").expect("the sheet");
    assert_eq!(sheet.height(), 9);
    assert_eq!(
        sheet.get((0, 0)),
        Some(&Data::String("事件类型 Event type".into()))
    );
    let juice_row = (1..sheet.height())
        .find(|&r| sheet.get((r, 0)) == Some(&Data::String("transformation".into())))
        .expect("the transformation row");
    assert_eq!(
        sheet.get((juice_row, column("产品"))),
        Some(&Data::String("柑橘汁（饮料）".into()))
    );
    assert_eq!(
        sheet.get((juice_row, column("数量"))),
        Some(&Data::Float(900.0))
    );
    match sheet.get((juice_row, column("发生时间"))) {
        Some(Data::DateTime(t)) => assert!(t.is_datetime() && t.as_f64() > 45_000.0),
        other => panic!("the event time is a date cell, not {other:?}"),
    }

    // EPCIS: valid against GS1's schema, corrections declared, the merge a transformation.
    let (status, content_type, body) = app.fetch(&path("epcis"), reg, None);
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/ld+json");
    let doc: Value = serde_json::from_slice(&body).expect("JSON");
    assert_valid_epcis(&doc);
    // The validator does check formats and CBV words: a broken copy of the document fails.
    for (field, value) in [
        ("eventID", "not a uri"),
        ("bizStep", "urn:epcglobal:cbv:bizstep:shipping"),
    ] {
        let mut broken = doc.clone();
        broken["epcisBody"]["eventList"][0][field] = json!(value);
        assert!(
            !epcis_validator().is_valid(&broken),
            "{field} {value} is refused"
        );
    }
    let events = doc["epcisBody"]["eventList"].as_array().unwrap();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<HashSet<_>>().len(),
        "event ids are unique"
    );
    let declared: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("errorDeclaration").is_some())
        .collect();
    assert_eq!(
        declared.len(),
        2,
        "the corrected note and the retracted irrigation"
    );
    let retraction = declared
        .iter()
        .find(|e| e["suyuan:eventType"] == "irrigation")
        .unwrap();
    assert_eq!(retraction["errorDeclaration"]["reason"], "did_not_occur");
    assert!(retraction["errorDeclaration"]
        .get("correctiveEventIDs")
        .is_none());
    let note = declared
        .iter()
        .find(|e| e["suyuan:eventType"] == "note")
        .unwrap();
    let declaration = &note["errorDeclaration"];
    assert_eq!(declaration["reason"], "incorrect_data");
    assert_eq!(declaration["suyuan:reason"], "错别字");
    assert_eq!(note["suyuan:details"]["text"], "采前巡园");
    let corrective = declaration["correctiveEventIDs"][0].as_str().unwrap();
    let corrected = events
        .iter()
        .find(|e| e["eventID"] == corrective)
        .expect("the corrective event is in the document");
    assert_eq!(corrected["suyuan:details"]["text"], "采前巡园，果面良好");
    let transformations: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "TransformationEvent")
        .collect();
    assert_eq!(transformations.len(), 1);
    let t = transformations[0];
    let inputs = t["inputQuantityList"].as_array().unwrap();
    assert_eq!(inputs.len(), 2, "both lots went in: {t}");
    for (lot, qty) in [(s.a, 1000.0), (s.b, 500.0)] {
        let class = format!("https://t.cn/id/lot/{lot}");
        let input = inputs
            .iter()
            .find(|i| i["epcClass"] == class)
            .expect("input");
        assert_eq!(input["quantity"], qty);
        assert_eq!(input["uom"], "KGM");
    }
    assert_eq!(
        t["outputQuantityList"],
        json!([{ "epcClass": format!("https://t.cn/id/lot/{}", s.m), "quantity": 900.0, "uom": "LTR" }])
    );
    assert_eq!(t["bizStep"], "commissioning");
    let harvest = events
        .iter()
        .find(|e| e["suyuan:eventType"] == "harvesting")
        .unwrap();
    assert_eq!(harvest["action"], "ADD");
    assert_eq!(harvest["bizStep"], "commissioning");
    assert_eq!(
        harvest["quantityList"][0]["quantity"], 1000.0,
        "2000 斤 are 1000 kg"
    );
    assert_eq!(harvest["quantityList"][0]["uom"], "KGM");
    assert_eq!(harvest["eventTimeZoneOffset"], "+08:00");
    let shipping = events.iter().find(|e| e["bizStep"] == "shipping").unwrap();
    assert_eq!(shipping["disposition"], "in_transit");
    assert_eq!(
        shipping["destinationList"][0],
        json!({ "type": "owning_party", "destination": format!("https://t.cn/id/org/{}", w.processor_org) })
    );
    let packing = events.iter().find(|e| e["bizStep"] == "packing").unwrap();
    assert_eq!(packing["quantityList"][0]["uom"], "XBX");
    // Stable ids: the same events have the same ids in a later export.
    let (_, _, again) = app.fetch(&path("epcis"), reg, None);
    let again: Value = serde_json::from_slice(&again).unwrap();
    let again_ids: Vec<&str> = again["epcisBody"]["eventList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, again_ids);
}

fn exports_answer_each_role_as_designed(app: TestApp) {
    let w = World::build(&app);
    let a = w.batch.0;
    record(
        &app,
        &w.farmer.token,
        a,
        &event(
            5,
            json!({ "kind": "harvest", "quantity": 10.0, "unit": "kg" }),
        ),
    );
    let other = &w.other_farmer;
    let path = format!("/api/v1/batches/{a}/export?format=csv");
    let roles: [(&str, Option<&str>, u16); 8] = [
        ("anonymous", None, 401),
        ("farmer", Some(&w.farmer.token), 200),
        ("other farmer", Some(&other.token), 404),
        ("processor", Some(&w.processor.token), 404),
        ("inspector", Some(&w.inspector.token), 404),
        ("logistics", Some(&w.logistics.token), 404),
        ("regulator", Some(&w.regulator.token), 200),
        ("operator", Some(&w.operator.token), 200),
    ];
    for (role, token, expected) in roles {
        let (status, _, body) = app.fetch(&path, token, None);
        assert_eq!(
            status,
            expected,
            "{role}: {}",
            String::from_utf8_lossy(&body)
        );
        if expected == 404 {
            let err: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(err["error"], "not_found", "{role}");
        }
    }
    // Once the lab is asked, its inspector may export the batch's trace.
    let (s, _) = app.post(
        &format!("/api/v1/batches/{a}/inspection-requests"),
        Some(&w.farmer.token),
        &json!({ "lab_org_id": w.lab }),
    );
    assert_eq!(s, 204);
    assert_eq!(app.fetch(&path, Some(&w.inspector.token), None).0, 200);

    // A period: each sees the events of the batches they may read.
    let period = json!({ "format": "csv", "from": days_ago(30), "to": Utc::now().to_rfc3339() });
    let (s, _) = app.post("/api/v1/exports", None, &period);
    assert_eq!(s, 401);
    let totals: Vec<(&str, &str, i64)> = vec![
        ("farmer", w.farmer.token.as_str(), 1),
        ("other farmer", other.token.as_str(), 0),
        ("regulator", w.regulator.token.as_str(), 1),
        ("operator", w.operator.token.as_str(), 1),
    ];
    for (role, token, expected) in totals {
        let (s, job) = app.post("/api/v1/exports", Some(token), &period);
        assert_eq!(s, 202, "{role}: {job}");
        assert_eq!(job["rows_total"], expected, "{role}: {job}");
        let done = wait_finished(&app, token, job["id"].as_i64().unwrap());
        assert_eq!(done["rows_done"], expected, "{role}");
        let (status, _, body) = app.fetch(done["href"].as_str().unwrap(), Some(token), None);
        assert_eq!(status, 200);
        assert_eq!(csv_rows(&body).len() as i64, expected, "{role}");
        // Nobody else sees someone's export.
        let id = job["id"].as_i64().unwrap();
        let stranger = if role == "farmer" {
            &other.token
        } else {
            &w.farmer.token
        };
        assert_eq!(
            app.get(&format!("/api/v1/exports/{id}"), Some(stranger)).0,
            404
        );
        assert_eq!(
            app.fetch(&format!("/api/v1/exports/{id}/file"), Some(stranger), None)
                .0,
            404
        );
        assert_eq!(app.get(&format!("/api/v1/exports/{id}"), None).0, 401);
    }
}

/// Polls an export until it is finished (or fails the test).
fn wait_finished(app: &TestApp, token: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, job) = app.get(&format!("/api/v1/exports/{id}"), Some(token));
        assert_eq!(s, 200, "{job}");
        match job["status"].as_str() {
            Some("finished") => return job,
            Some("failed") => panic!("the export failed: {job}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not finished in time: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn bad_export_requests_have_stable_codes(app: TestApp) {
    let w = World::build(&app);
    let reg = Some(w.regulator.token.as_str());
    let err =
        |(status, body): (u16, Value)| (status, body["error"].as_str().unwrap_or("").to_owned());
    let fetch_err = |path: &str| {
        let (status, _, body) = app.fetch(path, reg, None);
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, body["error"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(
        fetch_err("/api/v1/batches/999999/export?format=csv"),
        (404, "not_found".into())
    );
    assert_eq!(
        fetch_err(&format!("/api/v1/batches/{}/export?format=pdf", w.batch)),
        (400, "unknown_format".into())
    );
    assert_eq!(
        fetch_err(&format!(
            "/api/v1/batches/{}/export?format=csv&x=1",
            w.batch
        )),
        (400, "invalid_query".into())
    );
    // A batch's trace with no records is an empty spreadsheet, not an error.
    let (status, _, body) = app.fetch(&format!("/api/v1/batches/{}/export", w.batch), reg, None);
    assert_eq!(status, 200);
    assert!(csv_rows(&body).is_empty());

    let post = |body: Value| err(app.post("/api/v1/exports", reg, &body));
    assert_eq!(
        post(json!({ "format": "csv", "from": "2026-10-31", "to": "2026-10-01" })),
        (400, "invalid_period".into())
    );
    assert_eq!(
        post(
            json!({ "format": "csv", "from": "2026-10-01T12:00:00+08:00", "to": "2026-10-01T11:00:00+08:00" })
        ),
        (400, "invalid_period".into())
    );
    assert_eq!(
        post(json!({ "format": "csv", "from": "last week", "to": "2026-10-01" })),
        (400, "invalid_period".into())
    );
    assert_eq!(
        post(json!({ "format": "docx", "from": "2026-10-01", "to": "2026-10-31" })),
        (400, "unknown_format".into())
    );
    assert_eq!(
        post(json!({ "format": "csv", "from": "2026-10-01" })),
        (400, "missing_period".into())
    );
    assert_eq!(
        post(
            json!({ "format": "csv", "from": "2026-10-01", "to": "2026-10-31", "batch_id": w.batch })
        ),
        (400, "ambiguous_export".into())
    );
    assert_eq!(
        post(
            json!({ "format": "csv", "from": "2026-10-01", "to": "2026-10-31", "org_id": 999999 })
        ),
        (404, "not_found".into())
    );
    assert_eq!(
        post(
            json!({ "format": "csv", "from": "2026-10-01", "to": "2026-10-31", "product_id": 999999 })
        ),
        (404, "not_found".into())
    );
    assert_eq!(
        post(json!({ "format": "csv", "batch_id": 999999 })),
        (404, "not_found".into())
    );
    assert_eq!(
        post(json!({ "format": "csv", "from": "2026-10-01", "to": "2026-10-31", "colour": "red" })),
        (422, "invalid_body".into())
    );
    assert_eq!(
        err(app.get("/api/v1/exports/999999", reg)),
        (404, "not_found".into())
    );
    assert_eq!(
        fetch_err("/api/v1/exports/999999/file"),
        (404, "not_found".into())
    );
    // A trace exported in the background, in EPCIS, is the same document as the one answered at once.
    let (s, job) = app.post(
        "/api/v1/exports",
        reg,
        &json!({ "format": "epcis", "batch_id": w.batch }),
    );
    assert_eq!(s, 202, "{job}");
    let done = wait_finished(&app, &w.regulator.token, job["id"].as_i64().unwrap());
    let (status, content_type, body) = app.fetch(done["href"].as_str().unwrap(), reg, None);
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/ld+json")
    );
    assert_valid_epcis(&serde_json::from_slice(&body).unwrap());
    // Too many waiting at once for one organisation: 429 with its code (the exporter is busy with the
    // first ones meanwhile, or has finished them, in which case more are accepted).
    let mut codes = Vec::new();
    for _ in 0..12 {
        let (s, body) = app.post(
            "/api/v1/exports",
            reg,
            &json!({ "format": "csv", "from": "2020-01-01", "to": "2026-12-31" }),
        );
        codes.push((s, body["error"].as_str().unwrap_or("").to_owned()));
    }
    assert!(
        codes
            .iter()
            .all(|(s, e)| *s == 202 || (*s == 429 && e == "too_many_exports")),
        "{codes:?}"
    );
}

/// Loads `n` farming and handling records on 1,000 batches of the cooperative through the bulk loader.
fn load_events(app: &TestApp, w: &World, n: usize) {
    let start = Utc::now() - chrono::Duration::days(60);
    let batches: Vec<BulkBatch> = (0..1_000)
        .map(|i| BulkBatch {
            org_id: w.coop,
            product_id: w.citrus,
            lot_code: format!("BULK-{i:04}"),
            quantity: 100.0,
            unit: "kg".into(),
            status: BatchStatus::Open,
            status_reason: None,
            origin_site_id: Some(w.plot),
            custodian_org_id: w.coop,
            in_transit_to_org_id: None,
            created_at: start,
        })
        .collect();
    let records: Vec<BulkRecord> = (0..n)
        .map(|i| {
            let at = start + chrono::Duration::seconds(i as i64 * 30);
            BulkRecord {
                batch: i % 1_000,
                client_id: uuid::Uuid::new_v4(),
                event_time: at,
                received_at: at,
                site_id: Some(w.plot),
                actor_user_id: w.farmer.actor.user_id,
                org_id: w.coop,
                details: if i % 10 == 9 {
                    RecordDetails::Harvest(Harvest {
                        quantity: 10.0,
                        unit: "斤".into(),
                    })
                } else {
                    RecordDetails::Note(Note {
                        text: format!("巡园记录 {i}"),
                    })
                },
                attachments: vec![],
                flags: vec![],
            }
        })
        .collect();
    bulk::load(
        &app.db,
        &BulkLoad {
            batches,
            transformations: vec![],
            records,
        },
    )
    .expect("bulk load");
}

fn a_100000_event_period_is_exported_in_the_background(app: TestApp) {
    let w = World::build(&app);
    const EVENTS: i64 = 100_000;
    load_events(&app, &w, EVENTS as usize);
    let reg = w.regulator.token.as_str();
    let asked = Instant::now();
    let (s, job) = app.post(
        "/api/v1/exports",
        Some(reg),
        &json!({ "format": "csv", "from": days_ago(61), "to": Utc::now().to_rfc3339() }),
    );
    assert_eq!(s, 202, "{job}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the request only counts and queues ({:?})",
        asked.elapsed()
    );
    assert_eq!(job["rows_total"], EVENTS, "counted when asked: {job}");
    assert_eq!(job["rows_done"], 0);
    let id = job["id"].as_i64().unwrap();
    // While it runs: progress only grows, and the server answers other requests promptly.
    let mut seen = vec![(job["status"].as_str().unwrap().to_owned(), 0i64)];
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let t = Instant::now();
        let (s, _) = app.get("/api/v1/health", None);
        assert_eq!(s, 200);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "health answered in {:?} during the export",
            t.elapsed()
        );
        let (s, job) = app.get(&format!("/api/v1/exports/{id}"), Some(reg));
        assert_eq!(s, 200);
        let status = job["status"].as_str().unwrap().to_owned();
        let rows = job["rows_done"].as_i64().unwrap();
        assert!(
            rows >= seen.last().unwrap().1,
            "progress never goes back: {seen:?} then {rows}"
        );
        assert!(rows <= EVENTS);
        assert!(status != "failed", "{job}");
        seen.push((status.clone(), rows));
        if status == "finished" {
            break job;
        }
        assert!(Instant::now() < deadline, "not finished in time: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["rows_done"], EVENTS);
    assert_eq!(done["percent"], 100.0);
    assert!(
        seen.iter()
            .any(|(s, n)| s == "running" && *n > 0 && *n < EVENTS),
        "progress was shown while it ran: {seen:?}"
    );
    eprintln!(
        "100,000-event CSV export: {:?} from request to finished; progress seen {:?}",
        asked.elapsed(),
        seen.iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
    );
    let (status, _, body) = app.fetch(done["href"].as_str().unwrap(), Some(reg), None);
    assert_eq!(status, 200);
    assert_eq!(done["bytes"].as_u64().unwrap() as usize, body.len());
    let rows = csv_rows(&body);
    assert_eq!(rows.len() as i64, EVENTS);
    assert_eq!(&rows[9][0], "harvesting");
    assert_eq!(&rows[9][column("单位")], "斤");
    assert!(rows[0][column("详情")].starts_with("巡园记录"));
}
