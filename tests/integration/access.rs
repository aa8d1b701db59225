//! The whole matrix of roles × endpoints: every answer checked, including the public subset that needs no
//! account and hides personal data.

use serde_json::{json, Value};
use suyuan_core::model::NewBatch;
use suyuan_core::store::batches;

use crate::support::world::note;
use crate::support::{cid, days_ago, TestApp, World};

crate::both_backends!(role_endpoint_matrix, public_story_hides_personal_data);

const ROLES: [&str; 8] = [
    "anonymous",
    "farmer",
    "other_farmer",
    "processor",
    "inspector",
    "logistics",
    "regulator",
    "operator",
];

fn tokens(w: &World) -> [Option<String>; 8] {
    [
        None,
        Some(w.farmer.token.clone()),
        Some(w.other_farmer.token.clone()),
        Some(w.processor.token.clone()),
        Some(w.inspector.token.clone()),
        Some(w.logistics.token.clone()),
        Some(w.regulator.token.clone()),
        Some(w.operator.token.clone()),
    ]
}

/// A fresh batch of the cooperative (so that state-changing calls do not affect each other).
fn fresh_batch(app: &TestApp, w: &World) -> i64 {
    app.db
        .write(|c| {
            batches::create(
                c,
                &w.farmer.actor,
                &NewBatch {
                    product_id: w.citrus,
                    lot_code: format!("L-{}", &cid()[..8]),
                    quantity: 10.0,
                    unit: "kg".into(),
                    origin_site_id: None,
                },
            )
        })
        .unwrap()
        .id
        .0
}

fn role_endpoint_matrix(app: TestApp) {
    let w = World::build(&app);
    let b = w.batch.0;
    let (s, rec) = app.post(
        &format!("/api/v1/batches/{b}/records"),
        Some(&w.farmer.token),
        &note("x"),
    );
    assert_eq!(s, 201);
    let rec_id = rec["id"].as_i64().unwrap();
    let tokens = tokens(&w);
    type Call<'a> = Box<dyn Fn(Option<&str>) -> (u16, Value) + 'a>;
    let app = &app;
    let w = &w;
    let site = || json!({ "name": "新地块", "kind": "plot", "division_code": "530424" });
    let product = || json!({ "name": "新产品", "category": "水果" });
    let rows: Vec<(&str, Call, [u16; 8])> = vec![
        //                                                                   anon farm othr proc insp logi reg  op
        (
            "GET health",
            Box::new(|t| app.get("/api/v1/health", t)),
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET openapi",
            Box::new(|t| app.get("/api/v1/openapi.json", t)),
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET me",
            Box::new(|t| app.get("/api/v1/me", t)),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "POST token",
            Box::new(|t| app.post("/api/v1/auth/tokens", t, &json!({ "label": "erp" }))),
            [401, 201, 201, 201, 201, 201, 201, 201],
        ),
        (
            "GET organisations",
            Box::new(|t| app.get("/api/v1/organisations", t)),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET organisation",
            Box::new(|t| app.get(&format!("/api/v1/organisations/{}", w.coop), t)),
            [401, 200, 404, 404, 404, 404, 200, 200],
        ),
        (
            "POST organisation",
            Box::new(|t| {
                app.post("/api/v1/organisations", t, &json!({ "name": "新合作社", "kind": "cooperative", "division_code": "530424" }))
            }),
            [401, 403, 403, 403, 403, 403, 403, 201],
        ),
        (
            "GET users",
            Box::new(|t| app.get("/api/v1/users", t)),
            [401, 403, 403, 403, 403, 403, 403, 200],
        ),
        (
            "POST user",
            Box::new(|t| {
                app.post("/api/v1/users", t, &json!({ "org_id": w.coop, "username": format!("u{}", &cid()[..8]), "display_name": "新社员", "role": "farmer", "password": "longenough" }))
            }),
            [401, 403, 403, 403, 403, 403, 403, 201],
        ),
        (
            "POST site",
            Box::new(move |t| app.post("/api/v1/sites", t, &site())),
            [401, 201, 201, 201, 403, 201, 403, 403],
        ),
        (
            "GET sites",
            Box::new(|t| app.get("/api/v1/sites", t)),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "POST product",
            Box::new(move |t| app.post("/api/v1/products", t, &product())),
            [401, 201, 201, 201, 403, 201, 403, 403],
        ),
        (
            "GET products",
            Box::new(|t| app.get("/api/v1/products", t)),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "POST batch",
            Box::new(|t| {
                app.post("/api/v1/batches", t, &json!({ "product_id": w.citrus, "lot_code": format!("N-{}", &cid()[..8]), "quantity": 5.0, "unit": "kg" }))
            }),
            [401, 201, 422, 422, 403, 422, 403, 403],
        ),
        (
            "GET batches",
            Box::new(|t| app.get("/api/v1/batches", t)),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET batch",
            Box::new(|t| app.get(&format!("/api/v1/batches/{b}"), t)),
            [401, 200, 404, 404, 404, 404, 200, 200],
        ),
        (
            "GET records",
            Box::new(|t| app.get(&format!("/api/v1/batches/{b}/records"), t)),
            [401, 200, 404, 404, 404, 404, 200, 200],
        ),
        (
            "GET record",
            Box::new(|t| app.get(&format!("/api/v1/records/{rec_id}"), t)),
            [401, 200, 404, 404, 404, 404, 200, 200],
        ),
        (
            "POST record",
            Box::new(|t| app.post(&format!("/api/v1/batches/{b}/records"), t, &note("y"))),
            [401, 201, 404, 404, 404, 404, 403, 403],
        ),
        (
            "GET trace",
            Box::new(|t| app.get(&format!("/api/v1/batches/{b}/trace?direction=forward"), t)),
            [401, 200, 404, 404, 404, 404, 200, 200],
        ),
        (
            "POST inspection request",
            Box::new(|t| {
                app.post(
                    &format!("/api/v1/batches/{b}/inspection-requests"),
                    t,
                    &json!({ "lab_org_id": w.lab }),
                )
            }),
            [401, 204, 404, 404, 404, 404, 403, 403],
        ),
        (
            "POST transformation",
            Box::new(|t| {
                app.post("/api/v1/transformations", t, &json!({
            "client_id": cid(), "kind": "split", "event_time": days_ago(0),
            "inputs": [{ "batch_id": b, "quantity": 1.0 }],
            "outputs": [
                { "product_id": w.citrus, "lot_code": format!("S-{}", &cid()[..8]), "quantity": 0.5, "unit": "kg" },
                { "product_id": w.citrus, "lot_code": format!("S-{}", &cid()[..8]), "quantity": 0.5, "unit": "kg" }
            ]
        }))
            }),
            [401, 201, 404, 404, 403, 404, 403, 403],
        ),
        (
            "POST recall",
            Box::new(|t| {
                app.post(
                    &format!("/api/v1/batches/{}/recall", fresh_batch(app, w)),
                    t,
                    &json!({ "reason": "抽检不合格" }),
                )
            }),
            [401, 200, 404, 404, 404, 404, 200, 403],
        ),
        (
            "POST sync",
            Box::new(|t| {
                let (s, v) = app.post(
                    "/api/v1/records/sync",
                    t,
                    &json!([{ "batch_id": b, "record": note("z") }]),
                );
                // The request succeeds for any account; the item itself answers like a single capture.
                let item = v[0]["status"]
                    .as_str()
                    .map(|st| if st == "created" { 201 } else { 0 });
                (if s == 200 { item.unwrap_or(s) } else { s }, v)
            }),
            [401, 201, 0, 0, 0, 0, 0, 0],
        ),
        (
            "GET alerts",
            Box::new(|t| app.get("/api/v1/alerts", t)),
            [401, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET public story",
            Box::new(|t| app.get(&format!("/api/v1/public/batches/{b}"), t)),
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "POST logout",
            Box::new(|t| app.call("POST", "/api/v1/auth/logout", t, None)),
            [401, 204, 204, 204, 204, 204, 204, 204],
        ),
    ];
    let mut mismatches = Vec::new();
    for (name, call, expected) in &rows {
        for (i, role) in ROLES.iter().enumerate() {
            // Logout revokes the token, so it runs last and only once per role.
            let (got, body) = call(tokens[i].as_deref());
            if got != expected[i] {
                mismatches.push(format!(
                    "{name} as {role}: expected {}, got {got} {body}",
                    expected[i]
                ));
            }
            if got >= 400 {
                assert!(
                    body["error"].is_string() && body["message"].is_string(),
                    "{name} as {role}: error body {body}"
                );
                // A refusal of access says which: the stable code of its status (error.rs).
                let code = match got {
                    401 => Some("unauthenticated"),
                    403 => Some("forbidden"),
                    404 => Some("not_found"),
                    _ => None,
                };
                if let Some(code) = code {
                    assert_eq!(body["error"], code, "{name} as {role}: {got} {body}");
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "access matrix mismatches:\n{}",
        mismatches.join("\n")
    );
    // After logout, the tokens no longer work.
    assert_eq!(app.get("/api/v1/me", Some(&w.farmer.token)).0, 401);
}

fn public_story_hides_personal_data(app: TestApp) {
    let w = World::build(&app);
    app.post(
        &format!("/api/v1/batches/{}/records", w.batch),
        Some(&w.farmer.token),
        &note("施有机肥"),
    );
    let (s, story) = app.get(&format!("/api/v1/public/batches/{}", w.batch), None);
    assert_eq!(s, 200);
    let text = story.to_string();
    for private in [
        "13912345678",
        "farmer1",
        "测试farmer1",
        "actor_user_id",
        "credit_code",
        "custodian",
        "password",
    ] {
        assert!(
            !text.contains(private),
            "public story leaks {private}: {text}"
        );
    }
    assert_eq!(story["batch"]["producer"]["name"], "青龙柑橘合作社");
    assert_eq!(story["batch"]["records"][0]["details"]["text"], "施有机肥");
    // Nothing else is public.
    for path in [
        "/api/v1/batches",
        "/api/v1/organisations",
        "/api/v1/alerts",
        "/api/v1/sites",
        "/api/v1/products",
        "/api/v1/users",
    ] {
        assert_eq!(app.get(path, None).0, 401, "{path}");
    }
}
