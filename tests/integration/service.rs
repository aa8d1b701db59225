//! The service as a whole: the demo county, the OpenAPI document, the home page, pagination.

use serde_json::Value;

use crate::support::{TestApp, World};

crate::both_backends!(
    demo_county_seeds_once_and_verifies,
    openapi_documents_every_route,
    lists_are_paginated,
    home_page_is_chinese_with_english_switch
);

fn demo_county_seeds_once_and_verifies(app: TestApp) {
    let first = suyuan_server::demo::seed(&app.db).unwrap();
    assert!(first.seeded);
    let second = suyuan_server::demo::seed(&app.db).unwrap();
    assert!(
        !second.seeded,
        "seeding twice leaves the first seeding alone"
    );
    let report = app
        .db
        .read(|c| suyuan_core::store::verify::verify_chains(c, |_| {}))
        .unwrap();
    assert!(
        report.issues.is_empty() && report.records > 20,
        "{report:?}"
    );

    // Every demo account logs in with the documented password.
    for account in &first.accounts {
        let (s, body) = app.post("/api/v1/auth/login", None, &serde_json::json!({ "username": account.username, "password": suyuan_server::demo::DEMO_PASSWORD }));
        assert_eq!(s, 200, "{} {body}", account.username);
    }
    let (_, login) = app.post(
        "/api/v1/auth/login",
        None,
        &serde_json::json!({ "username": "regulator", "password": "suyuan-demo" }),
    );
    let token = login["token"].as_str().unwrap();
    let boxes = first.showcase_batch.unwrap();
    let (s, trace) = app.get(
        &format!("/api/v1/batches/{boxes}/trace?direction=backward"),
        Some(token),
    );
    assert_eq!(s, 200);
    let kinds: Vec<String> = trace["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            b["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["details"]["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    for kind in [
        "fertilising",
        "irrigation",
        "spraying",
        "harvest",
        "inspection",
        "shipping",
        "receiving",
        "processing",
        "packing",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "demo story lacks {kind}: {kinds:?}"
        );
    }
    assert_eq!(
        trace["batches"].as_array().unwrap().len(),
        4,
        "gift boxes ← graded fruit ← harvest 1, and harvest 2"
    );
    let corrected = trace["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["records"].as_array().unwrap().iter())
        .any(|r| r["state"] == "corrected");
    assert!(corrected, "the demo shows a corrected record");
    let (_, story) = app.get(&format!("/api/v1/public/batches/{boxes}"), None);
    let text = story.to_string();
    for private in ["138000000", "张建华", "farmer", "credit_code"] {
        assert!(!text.contains(private), "public demo story leaks {private}");
    }
}

fn openapi_documents_every_route(app: TestApp) {
    let (s, doc) = app.get("/api/v1/openapi.json", None);
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/auth/login", "post"),
        ("/me", "get"),
        ("/organisations", "post"),
        ("/users", "get"),
        ("/sites", "post"),
        ("/products", "get"),
        ("/batches", "post"),
        ("/batches/{id}", "get"),
        ("/batches/{id}/records", "post"),
        ("/batches/{id}/records", "get"),
        ("/batches/{id}/trace", "get"),
        ("/batches/{id}/recall", "post"),
        ("/batches/{id}/inspection-requests", "post"),
        ("/records/sync", "post"),
        ("/records/{id}", "get"),
        ("/transformations", "post"),
        ("/alerts", "get"),
        ("/public/batches/{id}", "get"),
        ("/health", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from OpenAPI"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "NewRecord",
        "RecordDetails",
        "Spraying",
        "Inspection",
        "ErrorBody",
        "Trace",
        "Batch",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
}

fn lists_are_paginated(app: TestApp) {
    let w = World::build(&app);
    for i in 0..5 {
        let (s, _) = app.post("/api/v1/batches", Some(&w.farmer.token), &serde_json::json!({ "product_id": w.citrus, "lot_code": format!("P-{i}"), "quantity": 1.0, "unit": "kg" }));
        assert_eq!(s, 201);
    }
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/api/v1/batches?limit=2&after={a}"),
            None => "/api/v1/batches?limit=2".into(),
        };
        let (s, page) = app.get(&path, Some(&w.farmer.token));
        assert_eq!(s, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|b| b["lot_code"].as_str().unwrap().to_owned()),
        );
        match page["next_after"] {
            Value::Null => break,
            ref v => after = v.as_i64(),
        }
    }
    assert_eq!(seen, ["QL-001", "P-0", "P-1", "P-2", "P-3", "P-4"]);
    // Another cooperative sees none of them.
    let (_, page) = app.get("/api/v1/batches", Some(&w.other_farmer.token));
    assert!(page["items"].as_array().unwrap().is_empty());
}

fn home_page_is_chinese_with_english_switch(app: TestApp) {
    let zh = ureq::get(&app.url("/")).call().unwrap();
    assert!(zh.content_type().starts_with("text/html"));
    let zh = zh.into_string().unwrap();
    assert!(
        zh.contains("lang=\"zh-CN\"") && zh.contains("农产品质量安全追溯"),
        "{zh}"
    );
    let en = ureq::get(&app.url("/?lang=en")).call().unwrap();
    assert!(en
        .header("set-cookie")
        .unwrap_or_default()
        .contains("lang=en"));
    let en = en.into_string().unwrap();
    assert!(en.contains("lang=\"en\"") && en.contains("traceability"));
    let css = ureq::get(&app.url("/static/site.css")).call().unwrap();
    assert!(css.content_type().starts_with("text/css"));
}
