//! Transformations, traces over the lineage graph, and one-step recall.

use serde_json::{json, Value};

use crate::support::{cid, days_ago, TestApp, World};

crate::both_backends!(
    split_merge_trace_and_recall,
    transformations_are_idempotent_and_guarded
);

fn receive_at_processor(app: &TestApp, w: &World, batch: i64) {
    let path = format!("/api/v1/batches/{batch}/records");
    let ship = json!({ "client_id": cid(), "event_time": days_ago(2), "details": { "kind": "shipping", "to_org_id": w.processor_org } });
    assert_eq!(app.post(&path, Some(&w.farmer.token), &ship).0, 201);
    let recv = json!({ "client_id": cid(), "event_time": days_ago(2), "details": { "kind": "receiving" } });
    assert_eq!(app.post(&path, Some(&w.processor.token), &recv).0, 201);
}

fn new_batch(app: &TestApp, w: &World, lot: &str) -> i64 {
    let (s, b) = app.post("/api/v1/batches", Some(&w.farmer.token), &json!({ "product_id": w.citrus, "lot_code": lot, "quantity": 500.0, "unit": "kg", "origin_site_id": w.plot }));
    assert_eq!(s, 201, "{b}");
    b["id"].as_i64().unwrap()
}

fn transform(app: &TestApp, w: &World, body: &Value) -> Value {
    let (s, t) = app.post("/api/v1/transformations", Some(&w.processor.token), body);
    assert_eq!(s, 201, "{t}");
    t
}

fn ids(v: &Value) -> Vec<i64> {
    let mut out: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    out.sort_unstable();
    out
}

fn split_merge_trace_and_recall(app: TestApp) {
    let w = World::build(&app);
    let a = w.batch.0;
    let b = new_batch(&app, &w, "QL-002");
    receive_at_processor(&app, &w, a);
    receive_at_processor(&app, &w, b);
    let split = transform(
        &app,
        &w,
        &json!({
            "client_id": cid(), "kind": "split", "event_time": days_ago(1), "site_id": w.line,
            "inputs": [{ "batch_id": a, "quantity": 1000.0 }],
            "outputs": [
                { "product_id": w.juice, "lot_code": "S-1", "quantity": 600.0, "unit": "kg" },
                { "product_id": w.juice, "lot_code": "S-2", "quantity": 400.0, "unit": "kg" }
            ]
        }),
    );
    let s1 = split["outputs"][0]["id"].as_i64().unwrap();
    let s2 = split["outputs"][1]["id"].as_i64().unwrap();
    let merge = transform(
        &app,
        &w,
        &json!({
            "client_id": cid(), "kind": "merge", "event_time": days_ago(0),
            "inputs": [{ "batch_id": s1, "quantity": 600.0 }, { "batch_id": b, "quantity": 500.0 }],
            "outputs": [{ "product_id": w.juice, "lot_code": "M-1", "quantity": 900.0, "unit": "L" }]
        }),
    );
    let m = merge["outputs"][0]["id"].as_i64().unwrap();
    assert_eq!(merge["edges"].as_array().unwrap().len(), 2);

    // Backward from the merged batch reaches both harvests, with their records.
    let (s, back) = app.get(
        &format!("/api/v1/batches/{m}/trace?direction=backward"),
        Some(&w.regulator.token),
    );
    assert_eq!(s, 200, "{back}");
    let reached: Vec<i64> = back["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["batch"]["id"].as_i64().unwrap())
        .collect();
    let mut sorted = reached.clone();
    sorted.sort_unstable();
    let mut expect = vec![a, b, s1, m];
    expect.sort_unstable();
    assert_eq!(sorted, expect);
    let depth_of = |id: i64| {
        back["batches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["batch"]["id"] == id)
            .unwrap()["depth"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        (depth_of(m), depth_of(s1), depth_of(b), depth_of(a)),
        (0, 1, 1, 2)
    );
    let harvest_records = back["batches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["batch"]["id"] == a)
        .unwrap()["records"]
        .as_array()
        .unwrap()
        .len();
    assert!(harvest_records >= 2, "records come with each batch");

    // Forward from the first harvest reaches both split outputs and the merge, not the other harvest.
    let (_, fwd) = app.get(
        &format!("/api/v1/batches/{a}/trace?direction=forward"),
        Some(&w.farmer.token),
    );
    let mut reached: Vec<i64> = fwd["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["batch"]["id"].as_i64().unwrap())
        .collect();
    reached.sort_unstable();
    let mut expect = vec![a, s1, s2, m];
    expect.sort_unstable();
    assert_eq!(reached, expect);

    // Recall of the first harvest reaches everything made from it, and only that.
    let (s, _) = app.post(
        &format!("/api/v1/batches/{a}/recall"),
        Some(&w.other_farmer.token),
        &json!({ "reason": "x" }),
    );
    assert_eq!(s, 404, "another cooperative cannot even see the batch");
    let (s, _) = app.post(
        &format!("/api/v1/batches/{a}/recall"),
        Some(&w.processor.token),
        &json!({ "reason": "x" }),
    );
    assert_eq!(s, 403, "the processor holds it but did not make it");
    let (s, out) = app.post(
        &format!("/api/v1/batches/{a}/recall"),
        Some(&w.regulator.token),
        &json!({ "reason": "毒死蜱超标" }),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(ids(&out["recalled"]), expect);
    for id in [a, s1, s2, m] {
        let (_, bb) = app.get(&format!("/api/v1/batches/{id}"), Some(&w.regulator.token));
        assert_eq!(bb["status"], "recalled", "batch {id}");
        let (_, recs) = app.get(
            &format!("/api/v1/batches/{id}/records?history=true"),
            Some(&w.regulator.token),
        );
        let last = recs["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["details"]["kind"], "recall");
        assert_eq!(last["details"]["origin_batch_id"], a);
    }
    let (_, other) = app.get(&format!("/api/v1/batches/{b}"), Some(&w.regulator.token));
    assert_eq!(other["status"], "open", "the other harvest is untouched");
    let (_, story) = app.get(&format!("/api/v1/public/batches/{m}"), None);
    assert_eq!(story["batch"]["status"], "recalled");

    // A second recall of the same batch is refused; a recalled batch cannot be processed.
    let (s, e) = app.post(
        &format!("/api/v1/batches/{a}/recall"),
        Some(&w.regulator.token),
        &json!({ "reason": "again" }),
    );
    assert_eq!((s, e["error"].as_str()), (409, Some("already_recalled")));
    let (s, e) = app.post("/api/v1/transformations", Some(&w.processor.token), &json!({
        "client_id": cid(), "kind": "split", "event_time": days_ago(0),
        "inputs": [{ "batch_id": s2, "quantity": 100.0 }],
        "outputs": [{ "product_id": w.juice, "lot_code": "X-1", "quantity": 50.0, "unit": "kg" }, { "product_id": w.juice, "lot_code": "X-2", "quantity": 50.0, "unit": "kg" }]
    }));
    assert_eq!((s, e["error"].as_str()), (409, Some("batch_recalled")));
}

fn transformations_are_idempotent_and_guarded(app: TestApp) {
    let w = World::build(&app);
    let body = json!({
        "client_id": cid(), "kind": "split", "event_time": days_ago(0),
        "inputs": [{ "batch_id": w.batch, "quantity": 1000.0 }],
        "outputs": [{ "product_id": w.juice, "lot_code": "S-1", "quantity": 1.0, "unit": "kg" }, { "product_id": w.juice, "lot_code": "S-2", "quantity": 1.0, "unit": "kg" }]
    });
    // The processor does not hold the harvest yet.
    let before = app.counts();
    let (s, e) = app.post("/api/v1/transformations", Some(&w.processor.token), &body);
    assert_eq!(s, 404, "{e}");
    assert_eq!(app.counts(), before);
    receive_at_processor(&app, &w, w.batch.0);
    let first = transform(&app, &w, &body);
    let (s, again) = app.post("/api/v1/transformations", Some(&w.processor.token), &body);
    assert_eq!(s, 201);
    assert_eq!(
        again["id"], first["id"],
        "a resend returns the stored transformation"
    );
    let mut changed = body.clone();
    changed["outputs"][0]["quantity"] = json!(2.0);
    let (s, e) = app.post(
        "/api/v1/transformations",
        Some(&w.processor.token),
        &changed,
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("transformation_conflict"))
    );
    // A split needs two outputs.
    let mut bad = body.clone();
    bad["client_id"] = json!(cid());
    bad["outputs"] =
        json!([{ "product_id": w.juice, "lot_code": "S-9", "quantity": 1.0, "unit": "kg" }]);
    let (s, e) = app.post("/api/v1/transformations", Some(&w.processor.token), &bad);
    assert_eq!(
        (s, e["error"].as_str()),
        (422, Some("invalid_transformation"))
    );
}
