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

/// The answer of `/api/v1` when no route matches (see `routes.rs`): what a probe must not get back.
fn is_unrouted_api_answer(status: u16, body: &Value) -> bool {
    status == 404 && body["error"] == "not_found" && body["message"] == "no such API endpoint"
}

/// `path` of the document with every `{parameter}` filled in: routing does not look at the value, so a
/// handler that gets one answers for itself (not found, unreadable, not allowed).
fn filled(path: &str) -> String {
    let mut out = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => in_parameter = true,
            '}' => {
                in_parameter = false;
                out.push('1');
            }
            _ if in_parameter => {}
            _ => out.push(c),
        }
    }
    out
}

/// Every routed API operation is in the OpenAPI document and every documented operation is routed, with
/// the same method. `routes.rs` registers the documented operations from the one list `openapi.rs`
/// documents (`routes::documented_api`); this probes the running server with every method on every
/// documented path, so an annotation whose path or method differs from its route fails here, and lists
/// what is routed on purpose without being documented, with why.
fn openapi_documents_every_route(app: TestApp) {
    let (s, doc) = app.get("/api/v1/openapi.json", None);
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().unwrap();

    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            assert!(
                ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                "{path}: unexpected key {method} in a path item"
            );
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    // Every documented operation answers for itself (the handler, even if only to say 401 or 404), not
    // the API's answer to an unknown route.
    for (method, path) in &documented {
        let (status, body) = app.call(method, &format!("/api/v1{}", filled(path)), None, None);
        assert!(
            !is_unrouted_api_answer(status, &body),
            "{method} {path} is documented but not routed"
        );
        assert_ne!(
            status, 405,
            "{method} {path} is documented but routed with another method"
        );
    }
    // The same path with a method the document does not give is not routed (the API's unknown-route
    // answer, or 405 from a resource routed by hand for its other methods): nothing is routed that the
    // document leaves out.
    for path in paths.keys() {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.iter().any(|(m, p)| m == method && p == path) {
                continue;
            }
            let (status, body) = app.call(method, &format!("/api/v1{}", filled(path)), None, None);
            assert!(
                status == 405 || is_unrouted_api_answer(status, &body),
                "{method} {path} is routed but not documented (answered {status} {body})"
            );
        }
    }

    // Routed on purpose without being in the document, each with why.
    let undocumented_api = [
        // The document itself.
        ("GET", "/api/v1/openapi.json"),
    ];
    for (method, path) in undocumented_api {
        let (status, body) = app.call(method, path, None, None);
        assert!(
            !is_unrouted_api_answer(status, &body),
            "{method} {path} is listed as routed but is not"
        );
        let relative = path.trim_start_matches("/api/v1");
        assert!(
            paths
                .get(relative)
                .and_then(|p| p.get(method.to_lowercase()))
                .is_none(),
            "{method} {path} is documented: remove it from the list of undocumented routes"
        );
    }
    // Outside `/api/v1`, so outside the document's server: the signing keys and anchors are published
    // at fixed well-known addresses for verifiers that know nothing of the API; the rest are pages and
    // their stylesheet for people.
    let outside_api = [
        "/.well-known/suyuan/keys.json",
        "/.well-known/suyuan/anchors",
        "/.well-known/suyuan/anchors/latest.json",
        "/.well-known/suyuan/anchors/1.json",
        "/",
        "/static/site.css",
        "/c",
        "/12345678",
        "/kiosk",
        "/01/12345678/10/LOT",
        "/b/1/photos/1",
        "/b/1/photos/1/thumb",
    ];
    for path in outside_api {
        assert!(
            !path.starts_with("/api/"),
            "{path} is under the API's base path"
        );
        let (status, _, body) = app.fetch(path, None, None);
        assert!(
            status != 404 || !body.is_empty(),
            "GET {path} is listed as routed but is not"
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
