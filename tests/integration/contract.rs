//! The API against its own OpenAPI document: schemathesis (PyPI, `pip install schemathesis`) reads
//! `/api/v1/openapi.json` from the running server, generates requests for every operation from it (valid
//! ones and wrong ones: bad types, missing fields, odd strings) and checks every answer: no server error,
//! a status the document names, the content type it names, a body that validates against its schema.
//! It runs over the demo county as a regulator (who reads everything) and as a farmer (who is refused
//! much), on both databases.
//!
//! Bounded in examples per operation and in time, with a fixed seed so that a failure repeats. The
//! logout operation is left out: it would end the session the run is using.
//!
//! When `st` is not installed the test fails in CI (`CI` or `SUYUAN_REQUIRE_TOOLS`) and is skipped with
//! a message elsewhere. `SUYUAN_CONTRACT_EXAMPLES` and `SUYUAN_CONTRACT_SECONDS` widen a run by hand.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::support::{Backend, TestApp};

/// The checks that make the contract: nothing else is asked of the answers.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

fn schemathesis() -> Option<PathBuf> {
    let candidates = ["st", "schemathesis"];
    for name in candidates {
        let found = Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Some(PathBuf::from(name));
        }
    }
    None
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn login(app: &TestApp, username: &str) -> String {
    let (status, body) = app.post(
        "/api/v1/auth/login",
        None,
        &json!({"username": username, "password": "suyuan-demo"}),
    );
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn contract(backend: Backend) {
    let Some(st) = schemathesis() else {
        if std::env::var_os("CI").is_some() || std::env::var_os("SUYUAN_REQUIRE_TOOLS").is_some() {
            panic!("schemathesis (`pip install schemathesis`, command `st`) is required here (CI)");
        }
        eprintln!(
            "SKIPPED: install schemathesis (pip install schemathesis) to run the API contract test"
        );
        return;
    };
    let Some(app) = TestApp::start(backend) else {
        return;
    };
    suyuan_server::demo::seed(&app.db).unwrap();
    let examples = env_number("SUYUAN_CONTRACT_EXAMPLES", 8);
    let seconds = env_number("SUYUAN_CONTRACT_SECONDS", 40);
    let mut failures = Vec::new();
    for user in ["regulator", "farmer"] {
        let token = login(&app, user);
        let report = tempfile::tempdir().unwrap();
        let output = Command::new(&st)
            .arg("run")
            .arg(app.url("/api/v1/openapi.json"))
            .args(["--checks", CHECKS])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--exclude-path", "/auth/logout"])
            .args(["--max-examples", &examples.to_string()])
            .args(["--max-time", &seconds.to_string()])
            .args(["--seed", "20261204"])
            .args(["--workers", "1"])
            .args(["--request-timeout", "30"])
            .arg("--no-color")
            .current_dir(report.path())
            .output()
            .expect("run schemathesis");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary = stdout
            .lines()
            .rev()
            .find(|l| l.contains(" in ") && l.contains('='))
            .unwrap_or("(no summary line)")
            .to_owned();
        eprintln!("schemathesis as {user} on {backend:?}: {summary}");
        if !output.status.success() {
            failures.push(format!(
                "as {user}: {summary}\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the API does not keep its OpenAPI document:\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn the_api_keeps_its_openapi_document_on_sqlite() {
    contract(Backend::Sqlite);
}

#[test]
fn the_api_keeps_its_openapi_document_on_postgres() {
    contract(Backend::Postgres);
}
