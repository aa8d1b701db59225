//! The label URL in a real browser: Debian's headless Chromium at 360 × 800 (a cheap phone) opens the
//! demo county's labels and a forged one, in Chinese and in English, and the rendered page says the
//! verdict. Chromium runs with `--dump-dom` (the DOM after rendering) and `--screenshot` (kept in the
//! test's temporary folder, printed on failure).
//!
//! When `chromium` is not installed the test fails in CI (`CI` or `SUYUAN_REQUIRE_TOOLS`) and is skipped
//! with a message elsewhere.

use std::path::Path;
use std::process::Command;

use suyuan_server::commands::demo_labels;

use crate::support::{Backend, TestApp};

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Opens `url` at 360 × 800 and returns the rendered DOM; leaves a screenshot at `shot`.
fn open(browser: &str, url: &str, shot: &Path) -> String {
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=360,800",
    ];
    let dom = Command::new(browser)
        .args(common)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let png = Command::new(browser)
        .args(common)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        png.status.success(),
        "{}",
        String::from_utf8_lossy(&png.stderr)
    );
    assert!(
        std::fs::metadata(shot).is_ok_and(|m| m.len() > 1_000),
        "a screenshot of {url}"
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

#[test]
fn label_pages_in_headless_chromium_at_360px() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() || std::env::var_os("SUYUAN_REQUIRE_TOOLS").is_some() {
            panic!("chromium (Debian package chromium) is required here (CI)");
        }
        eprintln!("SKIPPED: install chromium to run the browser tests");
        return;
    };
    let Some(app) = TestApp::start(Backend::Sqlite) else {
        return;
    };
    let summary = suyuan_core::demo::seed(&app.db).unwrap();
    let settings = suyuan_server::minting::MintSettings {
        env_key: None,
        ..suyuan_server::minting::MintSettings::in_data_dir(app.data_dir.path())
    };
    let labels =
        demo_labels::ensure(&app.db, &settings, "t.cn", summary.showcase_batch.unwrap()).unwrap();
    // A label signed by a key the platform has, with one digit of its signature changed.
    let mut forged = labels.active.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();

    let shots = tempfile::tempdir().unwrap();
    let cases = [
        ("active-zh", format!("/{}", labels.active), "正品"),
        (
            "active-en",
            format!("/{}?lang=en", labels.active),
            "Genuine",
        ),
        (
            "not-activated-zh",
            format!("/{}", labels.unactivated),
            "未激活",
        ),
        (
            "not-activated-en",
            format!("/{}?lang=en", labels.unactivated),
            "Not activated",
        ),
        ("void-zh", format!("/{}", labels.void), "已作废"),
        ("void-en", format!("/{}?lang=en", labels.void), "Void"),
        ("counterfeit-zh", format!("/{forged}"), "假冒标签"),
        (
            "counterfeit-en",
            format!("/{forged}?lang=en"),
            "Counterfeit",
        ),
    ];
    for (name, path, verdict) in cases {
        let shot = shots.path().join(format!("{name}.png"));
        let dom = open(browser, &app.url(&path), &shot);
        let heading = dom
            .split("<h1>")
            .nth(1)
            .and_then(|rest| rest.split("</h1>").next())
            .unwrap_or_default();
        assert_eq!(
            heading,
            verdict,
            "{name}: screenshot {}\n{dom}",
            shot.display()
        );
        assert!(
            dom.contains("width=device-width"),
            "{name}: laid out for the phone's width"
        );
        assert!(
            !dom.contains("<script"),
            "{name}: readable without JavaScript"
        );
    }
}
