//! Bad input of every kind gets its clear error with the right status and a stable code, and stores nothing.

use serde_json::{json, Value};

use crate::support::world::spraying;
use crate::support::{cid, TestApp, World};

crate::both_backends!(bad_input_is_refused_and_changes_nothing);

fn bad_input_is_refused_and_changes_nothing(app: TestApp) {
    let w = World::build(&app);
    let path = format!("/api/v1/batches/{}/records", w.batch);
    let token = Some(w.farmer.token.as_str());
    let before = app.counts();
    let check = |what: &str, (status, body): (u16, Value), want_status: u16, want_code: &str| {
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(body["error"], want_code, "{what}: {body}");
        assert!(
            !body["message"].as_str().unwrap_or_default().is_empty(),
            "{what}: message"
        );
    };

    check(
        "malformed JSON",
        app.call_raw(
            "POST",
            &path,
            token,
            "application/json",
            b"{\"client_id\": ",
        ),
        400,
        "malformed_json",
    );
    check(
        "not JSON at all",
        app.call_raw(
            "POST",
            &path,
            token,
            "application/json",
            b"\x00\xff garbage",
        ),
        400,
        "malformed_json",
    );
    check(
        "wrong content type",
        app.call_raw("POST", &path, token, "text/plain", b"{}"),
        415,
        "unsupported_media_type",
    );
    let mut wrong_type = spraying(3, 7);
    wrong_type["details"]["dose"] = json!("thirty");
    check(
        "wrong type",
        app.post(&path, token, &wrong_type),
        422,
        "invalid_body",
    );
    let mut unknown_field = spraying(3, 7);
    unknown_field["details"]["colour"] = json!("green");
    check(
        "unknown field in details",
        app.post(&path, token, &unknown_field),
        422,
        "invalid_body",
    );
    let mut unknown_top = spraying(3, 7);
    unknown_top["priority"] = json!(1);
    check(
        "unknown top-level field",
        app.post(&path, token, &unknown_top),
        422,
        "invalid_body",
    );
    let mut unknown_kind = spraying(3, 7);
    unknown_kind["details"]["kind"] = json!("teleporting");
    check(
        "unknown kind",
        app.post(&path, token, &unknown_kind),
        422,
        "invalid_body",
    );
    let big = json!({ "client_id": cid(), "event_time": crate::support::days_ago(0), "details": { "kind": "note", "text": "x".repeat(300 * 1024) } });
    check(
        "oversized body",
        app.post(&path, token, &big),
        413,
        "payload_too_large",
    );
    let mut future = spraying(3, 7);
    future["event_time"] = json!("2999-01-01T00:00:00Z");
    check(
        "far future",
        app.post(&path, token, &future),
        422,
        "event_time_in_future",
    );
    let mut ancient = spraying(3, 7);
    ancient["event_time"] = json!("1970-01-01T00:00:00Z");
    check(
        "too old",
        app.post(&path, token, &ancient),
        422,
        "event_time_too_old",
    );
    let mut no_reg = spraying(3, 7);
    no_reg["details"]
        .as_object_mut()
        .unwrap()
        .remove("registration_number");
    check(
        "pesticide without registration number",
        app.post(&path, token, &no_reg),
        422,
        "missing_registration_number",
    );
    let mut bad_reg = spraying(3, 7);
    bad_reg["details"]["registration_number"] = json!("12345");
    check(
        "malformed registration number",
        app.post(&path, token, &bad_reg),
        422,
        "invalid_registration_number",
    );
    let mut negative = spraying(3, 7);
    negative["details"]["dose"] = json!(-3.0);
    check(
        "negative dose",
        app.post(&path, token, &negative),
        422,
        "invalid_number",
    );
    let mut bad_uuid = spraying(3, 7);
    bad_uuid["client_id"] = json!("not-a-uuid");
    check(
        "bad client id",
        app.post(&path, token, &bad_uuid),
        422,
        "invalid_body",
    );
    let recall = json!({ "client_id": cid(), "event_time": crate::support::days_ago(0), "details": { "kind": "recall", "reason": "x", "origin_batch_id": w.batch } });
    check(
        "recall through capture",
        app.post(&path, token, &recall),
        422,
        "use_recall_endpoint",
    );
    let mut unknown_site = spraying(3, 7);
    unknown_site["site_id"] = json!(987_654);
    check(
        "unknown site",
        app.post(&path, token, &unknown_site),
        404,
        "not_found",
    );
    check(
        "unknown batch",
        app.post("/api/v1/batches/987654/records", token, &spraying(3, 7)),
        404,
        "not_found",
    );
    check(
        "batch id not a number",
        app.post("/api/v1/batches/abc/records", token, &spraying(3, 7)),
        404,
        "not_found",
    );
    check(
        "unknown endpoint",
        app.get("/api/v1/nothing-here", token),
        404,
        "not_found",
    );
    check(
        "bad query",
        app.get("/api/v1/batches?limit=many", token),
        400,
        "invalid_query",
    );
    check(
        "page too large",
        app.get("/api/v1/batches?limit=100000", token),
        422,
        "invalid_page",
    );
    check(
        "bad direction",
        app.get(
            &format!("/api/v1/batches/{}/trace?direction=sideways", w.batch),
            token,
        ),
        400,
        "invalid_query",
    );
    check("bad lot code", app.post("/api/v1/batches", token, &json!({ "product_id": w.citrus, "lot_code": "lot with spaces", "quantity": 1.0, "unit": "kg" })), 422, "invalid_lot_code");
    check(
        "zero quantity",
        app.post(
            "/api/v1/batches",
            token,
            &json!({ "product_id": w.citrus, "lot_code": "Z-1", "quantity": 0.0, "unit": "kg" }),
        ),
        422,
        "invalid_quantity",
    );
    check(
        "duplicate lot",
        app.post(
            "/api/v1/batches",
            token,
            &json!({ "product_id": w.citrus, "lot_code": "QL-001", "quantity": 1.0, "unit": "kg" }),
        ),
        409,
        "duplicate_lot_code",
    );
    check(
        "unknown product",
        app.post(
            "/api/v1/batches",
            token,
            &json!({ "product_id": 424242, "lot_code": "Z-2", "quantity": 1.0, "unit": "kg" }),
        ),
        404,
        "not_found",
    );
    let op = Some(w.operator.token.as_str());
    check(
        "bad division code",
        app.post(
            "/api/v1/organisations",
            op,
            &json!({ "name": "x", "kind": "farm", "division_code": "12" }),
        ),
        422,
        "invalid_division_code",
    );
    check("bad credit code", app.post("/api/v1/organisations", op, &json!({ "name": "x", "kind": "farm", "division_code": "530424", "credit_code": "91530424MA6K7XXX10" })), 422, "invalid_credit_code");
    check("weak password", app.post("/api/v1/users", op, &json!({ "org_id": w.coop, "username": "newbie", "display_name": "新", "role": "farmer", "password": "short" })), 422, "weak_password");
    check("unknown role", app.post("/api/v1/users", op, &json!({ "org_id": w.coop, "username": "newbie", "display_name": "新", "role": "king", "password": "longenough" })), 422, "invalid_body");
    check("inconsistent inspection", app.post(&path, Some(&w.inspector.token), &json!({
        "client_id": cid(), "event_time": crate::support::days_ago(0),
        "details": { "kind": "inspection", "method": "lab", "overall": "pass",
            "items": [{ "name": "毒死蜱", "value": 0.9, "unit": "mg/kg", "limit": 0.5, "result": "pass" }] }
    })), 422, "inconsistent_inspection");
    check("bad sync size", app.post("/api/v1/records/sync", token, &Value::Array((0..1001).map(|_| json!({ "batch_id": w.batch, "record": crate::support::world::note("x") })).collect())), 422, "too_many_items");
    check(
        "garbage token",
        app.get("/api/v1/me", Some("garbage")),
        401,
        "unauthenticated",
    );

    assert_eq!(app.counts(), before, "refused requests stored nothing");
}
