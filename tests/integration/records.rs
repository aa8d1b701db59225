//! Capturing records: idempotency by client id, conflicts, corrections and the corrected view, offline sync.

use serde_json::{json, Value};

use crate::support::world::{note, spraying};
use crate::support::{cid, days_ago, TestApp, World};

crate::both_backends!(
    capture_is_idempotent_and_conflicts_are_409,
    corrections_supersede_and_reads_show_the_corrected_view,
    sync_reports_each_item_and_loses_nothing,
    concurrent_resends_store_one_record,
);

fn records_path(w: &World) -> String {
    format!("/api/v1/batches/{}/records", w.batch)
}

fn capture_is_idempotent_and_conflicts_are_409(app: TestApp) {
    let w = World::build(&app);
    let body = note("剪枝");
    let (s, first) = app.post(&records_path(&w), Some(&w.farmer.token), &body);
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["details"]["kind"], "note");
    assert_eq!(first["actor_user_id"], w.farmer.actor.user_id.0);

    let (s, again) = app.post(&records_path(&w), Some(&w.farmer.token), &body);
    assert_eq!(s, 200, "a resend answers 200 with the stored record");
    assert_eq!(again, first);

    let mut different = body.clone();
    different["details"]["text"] = json!("施肥");
    let before = app.counts();
    let (s, err) = app.post(&records_path(&w), Some(&w.farmer.token), &different);
    assert_eq!(s, 409, "{err}");
    assert_eq!(err["error"], "record_conflict");
    assert_eq!(err["details"]["stored"]["details"]["text"], "剪枝");
    assert_eq!(err["details"]["submitted"]["details"]["text"], "施肥");
    assert_eq!(app.counts(), before, "a conflict stores nothing");

    let (_, list) = app.get(
        &format!("{}?history=true", records_path(&w)),
        Some(&w.farmer.token),
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

fn corrections_supersede_and_reads_show_the_corrected_view(app: TestApp) {
    let w = World::build(&app);
    let (s, spray) = app.post(&records_path(&w), Some(&w.farmer.token), &spraying(30, 14));
    assert_eq!(s, 201, "{spray}");
    let mut replacement = spray["details"].clone();
    replacement["dose"] = json!(25.0);
    let correction = json!({
        "client_id": cid(),
        "event_time": days_ago(29),
        "details": { "kind": "correction", "supersedes": spray["id"], "reason": "剂量录错", "replacement": replacement }
    });

    // Only the organisation that wrote the record may correct it.
    let (s, err) = app.post(&records_path(&w), Some(&w.other_farmer.token), &correction);
    assert!(s == 403 || s == 404, "{s} {err}");

    // The replacement must be of the same kind.
    let wrong_kind = json!({
        "client_id": cid(), "event_time": days_ago(29),
        "details": { "kind": "correction", "supersedes": spray["id"], "reason": "x", "replacement": { "kind": "note", "text": "x" } }
    });
    let (s, err) = app.post(&records_path(&w), Some(&w.farmer.token), &wrong_kind);
    assert_eq!(s, 422, "{err}");
    assert_eq!(err["error"], "invalid_correction");

    let (s, corr) = app.post(&records_path(&w), Some(&w.farmer.token), &correction);
    assert_eq!(s, 201, "{corr}");
    assert_eq!(corr["supersedes"], spray["id"]);

    let (_, view) = app.get(&records_path(&w), Some(&w.farmer.token));
    let view = view["items"].as_array().unwrap();
    assert_eq!(
        view.len(),
        1,
        "the corrected view shows the record once: {view:?}"
    );
    assert_eq!(view[0]["state"], "corrected");
    assert_eq!(view[0]["details"]["dose"], 25.0);
    assert_eq!(view[0]["original_details"]["dose"], 30.0);
    assert_eq!(view[0]["corrections"][0]["reason"], "剂量录错");

    let (_, history) = app.get(
        &format!("{}?history=true", records_path(&w)),
        Some(&w.farmer.token),
    );
    let history = history["items"].as_array().unwrap();
    assert_eq!(history.len(), 2, "the history keeps both");
    assert_eq!(history[0]["details"]["dose"], 30.0);

    // A retraction (no replacement) hides the record from the public story but keeps it in the history.
    let (s, n) = app.post(&records_path(&w), Some(&w.farmer.token), &note("误录"));
    assert_eq!(s, 201);
    let retract = json!({ "client_id": cid(), "event_time": days_ago(0), "details": { "kind": "correction", "supersedes": n["id"], "reason": "重复录入" } });
    assert_eq!(
        app.post(&records_path(&w), Some(&w.farmer.token), &retract)
            .0,
        201
    );
    let (_, view) = app.get(&records_path(&w), Some(&w.farmer.token));
    assert!(view["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == n["id"] && r["state"] == "retracted"));
    let (s, story) = app.get(&format!("/api/v1/public/batches/{}", w.batch), None);
    assert_eq!(s, 200);
    let texts: Vec<&Value> = story["batch"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["details"])
        .collect();
    assert!(!texts.iter().any(|d| d["text"] == "误录"), "{texts:?}");
}

fn sync_reports_each_item_and_loses_nothing(app: TestApp) {
    let w = World::build(&app);
    let good = note("a");
    let dup = good.clone();
    let mut bad = spraying(3, 7);
    bad["details"]["registration_number"] = json!("");
    let items = json!([
        { "batch_id": w.batch, "record": good },
        { "batch_id": w.batch, "record": bad },
        { "batch_id": w.batch, "record": dup },
        { "batch_id": w.batch, "record": note("b") },
        { "batch_id": 999_999, "record": note("c") },
    ]);
    let (s, out) = app.post("/api/v1/records/sync", Some(&w.farmer.token), &items);
    assert_eq!(s, 200, "{out}");
    let status: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["created", "rejected", "existing", "created", "rejected"]
    );
    assert_eq!(out[1]["error"]["error"], "missing_registration_number");
    assert_eq!(out[4]["error"]["error"], "not_found");
    let (_, history) = app.get(
        &format!("{}?history=true", records_path(&w)),
        Some(&w.farmer.token),
    );
    let seqs: Vec<i64> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        [1, 2],
        "the chain has no gap where an item was rejected"
    );

    // Resending the whole backlog is harmless.
    let (_, again) = app.post("/api/v1/records/sync", Some(&w.farmer.token), &items);
    let status: Vec<&str> = again
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["existing", "rejected", "existing", "existing", "rejected"]
    );
}

fn concurrent_resends_store_one_record(app: TestApp) {
    let w = World::build(&app);
    let body = note("同时重发");
    let path = records_path(&w);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| app.post(&path, Some(&w.farmer.token), &body).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    let (_, history) = app.get(&format!("{path}?history=true"), Some(&w.farmer.token));
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
}
