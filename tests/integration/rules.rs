//! The rules enforced at write time: harvests inside a pre-harvest interval, failed inspections, and who may
//! record an inspection.

use serde_json::json;

use crate::support::world::{harvest, inspection, spraying};
use crate::support::{TestApp, World};

crate::both_backends!(
    harvest_within_phi_is_flagged_alerted_and_blocks_until_inspection_passes,
    harvest_after_phi_is_clean,
    failed_inspection_blocks_until_a_later_one_passes,
    inspections_need_a_request_to_the_lab,
    shipping_moves_custody_on_receipt,
);

fn batch_status(app: &TestApp, w: &World) -> String {
    let (_, b) = app.get(
        &format!("/api/v1/batches/{}", w.batch),
        Some(&w.regulator.token),
    );
    b["status"].as_str().unwrap().to_owned()
}

fn open_alerts(app: &TestApp, w: &World, kind: &str) -> usize {
    let (_, a) = app.get(
        &format!("/api/v1/alerts?open=true&batch_id={}", w.batch),
        Some(&w.regulator.token),
    );
    a["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == kind)
        .count()
}

fn records(w: &World) -> String {
    format!("/api/v1/batches/{}/records", w.batch)
}

fn harvest_within_phi_is_flagged_alerted_and_blocks_until_inspection_passes(app: TestApp) {
    let w = World::build(&app);
    // Sprayed 5 days ago with a 14-day interval, harvested today: 9 days too early.
    assert_eq!(
        app.post(&records(&w), Some(&w.farmer.token), &spraying(5, 14))
            .0,
        201
    );
    let (s, h) = app.post(&records(&w), Some(&w.farmer.token), &harvest(0));
    assert_eq!(s, 201, "{h}");
    assert_eq!(h["flags"], json!(["harvest_within_phi"]));
    assert_eq!(batch_status(&app, &w), "blocked");
    assert_eq!(open_alerts(&app, &w, "harvest_within_phi"), 1);
    // The cooperative sees its own alert too.
    let (_, mine) = app.get("/api/v1/alerts?open=true", Some(&w.farmer.token));
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = app.get("/api/v1/alerts?open=true", Some(&w.other_farmer.token));
    assert!(theirs["items"].as_array().unwrap().is_empty());

    let (s, _) = app.post(
        &format!("/api/v1/batches/{}/inspection-requests", w.batch),
        Some(&w.farmer.token),
        &json!({ "lab_org_id": w.lab }),
    );
    assert_eq!(s, 204);
    assert_eq!(
        app.post(&records(&w), Some(&w.inspector.token), &inspection(true))
            .0,
        201
    );
    assert_eq!(batch_status(&app, &w), "open");
    assert_eq!(open_alerts(&app, &w, "harvest_within_phi"), 0);
}

fn harvest_after_phi_is_clean(app: TestApp) {
    let w = World::build(&app);
    assert_eq!(
        app.post(&records(&w), Some(&w.farmer.token), &spraying(30, 14))
            .0,
        201
    );
    let (s, h) = app.post(&records(&w), Some(&w.farmer.token), &harvest(0));
    assert_eq!(s, 201);
    assert_eq!(h["flags"], json!([]));
    assert_eq!(batch_status(&app, &w), "open");
    assert_eq!(open_alerts(&app, &w, "harvest_within_phi"), 0);
}

fn failed_inspection_blocks_until_a_later_one_passes(app: TestApp) {
    let w = World::build(&app);
    app.post(
        &format!("/api/v1/batches/{}/inspection-requests", w.batch),
        Some(&w.farmer.token),
        &json!({ "lab_org_id": w.lab }),
    );
    let (s, r) = app.post(&records(&w), Some(&w.inspector.token), &inspection(false));
    assert_eq!(s, 201, "{r}");
    assert_eq!(batch_status(&app, &w), "blocked");
    assert_eq!(open_alerts(&app, &w, "inspection_failed"), 1);
    let (_, story) = app.get(&format!("/api/v1/public/batches/{}", w.batch), None);
    assert_eq!(story["batch"]["status"], "blocked");
    assert_eq!(
        app.post(&records(&w), Some(&w.inspector.token), &inspection(true))
            .0,
        201
    );
    assert_eq!(batch_status(&app, &w), "open");
    assert_eq!(open_alerts(&app, &w, "inspection_failed"), 0);
}

fn inspections_need_a_request_to_the_lab(app: TestApp) {
    let w = World::build(&app);
    let before = app.counts();
    let (s, e) = app.post(&records(&w), Some(&w.inspector.token), &inspection(true));
    assert_eq!(s, 404, "an unrequested lab cannot even see the batch: {e}");
    // A farmer cannot record an inspection of their own batch.
    let (s, e) = app.post(&records(&w), Some(&w.farmer.token), &inspection(true));
    assert_eq!(s, 403, "{e}");
    // Only a lab can be asked.
    let (s, e) = app.post(
        &format!("/api/v1/batches/{}/inspection-requests", w.batch),
        Some(&w.farmer.token),
        &json!({ "lab_org_id": w.processor_org }),
    );
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"], "not_a_lab");
    assert_eq!(app.counts(), before);
}

fn shipping_moves_custody_on_receipt(app: TestApp) {
    let w = World::build(&app);
    let ship = json!({
        "client_id": crate::support::cid(), "event_time": crate::support::days_ago(1),
        "details": { "kind": "shipping", "to_org_id": w.processor_org, "to_site_id": w.line, "vehicle_plate": "云F·12345" }
    });
    assert_eq!(app.post(&records(&w), Some(&w.farmer.token), &ship).0, 201);
    let receive = json!({
        "client_id": crate::support::cid(), "event_time": crate::support::days_ago(0),
        "details": { "kind": "receiving", "quantity": 1000.0, "unit": "kg" }
    });
    // Nobody else may sign for it.
    assert_eq!(
        app.post(&records(&w), Some(&w.logistics.token), &receive).0,
        404
    );
    assert_eq!(
        app.post(&records(&w), Some(&w.farmer.token), &receive).0,
        403
    );
    assert_eq!(
        app.post(&records(&w), Some(&w.processor.token), &receive).0,
        201
    );
    let (_, b) = app.get(
        &format!("/api/v1/batches/{}", w.batch),
        Some(&w.processor.token),
    );
    assert_eq!(b["custodian_org_id"], w.processor_org.0);
    assert_eq!(b["in_transit_to_org_id"], serde_json::Value::Null);
    // The cooperative no longer holds it and cannot record on it; it still sees it as its maker.
    assert_eq!(
        app.post(
            &records(&w),
            Some(&w.farmer.token),
            &crate::support::world::note("x")
        )
        .0,
        403
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/batches/{}", w.batch),
            Some(&w.farmer.token)
        )
        .0,
        200
    );
}
