//! Logins, sessions, tokens and lockout.

use serde_json::{json, Value};
use suyuan_server::extract::TrustedProxies;
use suyuan_server::AppState;

use crate::support::{TestApp, World};

crate::both_backends!(
    login_session_cookie_and_lockout,
    login_throttle_spares_the_owner_and_names_nobody,
    a_forwarded_address_from_an_untrusted_peer_is_ignored,
);

fn login_session_cookie_and_lockout(app: TestApp) {
    let _w = World::build(&app);
    let login = |password: &str| {
        app.post(
            "/api/v1/auth/login",
            None,
            &json!({ "username": "farmer1", "password": password }),
        )
    };
    let (s, e) = login("wrong-password");
    assert_eq!((s, e["error"].as_str()), (401, Some("unauthenticated")));
    let (s, e) = app.post(
        "/api/v1/auth/login",
        None,
        &json!({ "username": "nobody", "password": "whatever1" }),
    );
    assert_eq!(
        (s, e["message"].as_str()),
        (401, Some("wrong username or password")),
        "unknown users get the same answer"
    );

    // A good login gives a session token that works as a cookie and as a bearer token.
    let resp = ureq::post(&app.url("/api/v1/auth/login"))
        .send_json(json!({ "username": "farmer1", "password": "correct-horse-battery" }))
        .unwrap();
    let cookie = resp.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.starts_with("suyuan_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let body: serde_json::Value = resp.into_json().unwrap();
    assert!(body["user"].get("password_hash").is_none());
    let token = body["token"].as_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap();
    let me: serde_json::Value = ureq::get(&app.url("/api/v1/me"))
        .set("Cookie", pair)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(me["user"]["username"], "farmer1");
    assert_eq!(app.get("/api/v1/me", Some(&token)).0, 200);
    assert_eq!(
        app.call("POST", "/api/v1/auth/logout", Some(&token), None)
            .0,
        204
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).0,
        401,
        "logout revokes the session"
    );

    // Five failures from one client lock that client out of the account (429), even with the right password.
    for _ in 0..5 {
        assert_eq!(login("wrong-password").0, 401);
    }
    let (s, e) = login("correct-horse-battery");
    assert_eq!((s, e["error"].as_str()), (429, Some("too_many_attempts")));
}

/// What a login attempt got back.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    cookie: Option<String>,
}

/// A login to `base`, sent with `X-Forwarded-For: from` when given.
fn attempt(base: &str, from: Option<&str>, username: &str, password: &str) -> Answer {
    let mut req = ureq::post(&format!("{base}/api/v1/auth/login"));
    if let Some(from) = from {
        req = req.set("X-Forwarded-For", from);
    }
    let resp = match req.send_json(json!({ "username": username, "password": password })) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let retry_after = resp
        .header("Retry-After")
        .map(|v| v.parse().expect("Retry-After in seconds"));
    let cookie = resp.header("Set-Cookie").map(str::to_owned);
    let body: Value = resp.into_json().unwrap_or(Value::Null);
    Answer {
        status,
        body,
        retry_after,
        cookie,
    }
}

/// A second server over the test's database, configured by `setup` (e.g. behind a trusted proxy).
struct SecondServer {
    base: String,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SecondServer {
    fn start(app: &TestApp, setup: impl FnOnce(AppState) -> AppState + Send + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let db = app.db.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let state = setup(AppState::new(db).unwrap());
                let server = suyuan_server::run(listener, state).unwrap();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        SecondServer {
            base,
            handle: Some(rx.recv().unwrap()),
            thread: Some(thread),
        }
    }
}

impl Drop for SecondServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            actix_web::rt::System::new().block_on(h.stop(false));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Status and body only (the time left in Retry-After may tick over between two sequences).
fn shape(a: &Answer) -> (u16, Value, bool) {
    (a.status, a.body.clone(), a.retry_after.is_some())
}

fn login_throttle_spares_the_owner_and_names_nobody(app: TestApp) {
    let _w = World::build(&app);
    let proxy = SecondServer::start(&app, |mut s| {
        s.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        s
    });
    let base = proxy.base.as_str();
    const RIGHT: &str = "correct-horse-battery";

    // One client guessing the regulator's password, another guessing a name that does not exist: the
    // same answers, step by step, and the guessing client is throttled in both cases.
    let guesses = |name: &str, from: &str| -> Vec<Answer> {
        (0..7)
            .map(|_| attempt(base, Some(from), name, "guess-123456"))
            .collect()
    };
    let real = guesses("reg", "203.0.113.9");
    let unknown = guesses("nobody-here", "203.0.113.10");
    assert_eq!(
        real.iter().map(shape).collect::<Vec<_>>(),
        unknown.iter().map(shape).collect::<Vec<_>>(),
        "a real name and an unknown one answer alike"
    );
    let statuses: Vec<u16> = real.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    let refused = &real[5];
    assert_eq!(refused.body["error"], "too_many_attempts");
    let wait = refused.retry_after.expect("Retry-After");
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    assert!(real[..5].iter().all(|a| a.retry_after.is_none()));
    let again = attempt(base, Some("203.0.113.9"), "reg", RIGHT);
    assert_eq!(again.status, 429, "the guessing client stays refused");

    // The regulator, from another network, logs in at once.
    let owner = attempt(base, Some("198.51.100.7"), "reg", RIGHT);
    assert_eq!(owner.status, 200, "{:?}", owner.body);
    // Through the same proxy's second hop, the client is the last address the proxy did not write.
    let hop = attempt(base, Some("203.0.113.9, 198.51.100.7"), "reg", RIGHT);
    assert_eq!(hop.status, 200, "{:?}", hop.body);

    // Many clients guessing one name, once each: the name comes under attack. Clients that failed on it
    // are refused; one that has not is still checked (a wrong password: 401, the right one: in). An
    // unknown name behaves the same.
    let mut sequences = Vec::new();
    for (name, net) in [("insp", "192.0.2"), ("nobody-else", "198.18.0")] {
        let mut answers: Vec<Answer> = (0..10)
            .map(|i| attempt(base, Some(&format!("{net}.{i}")), name, "guess-123456"))
            .collect();
        answers.push(attempt(
            base,
            Some(&format!("{net}.3")),
            name,
            "guess-654321",
        ));
        answers.push(attempt(
            base,
            Some(&format!("{net}.200")),
            name,
            "guess-654321",
        ));
        sequences.push(answers.iter().map(shape).collect::<Vec<_>>());
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(statuses[..10], [401; 10], "{name}");
        assert_eq!(statuses[10..], [429, 401], "{name}");
    }
    assert_eq!(sequences[0], sequences[1]);
    let owner = attempt(base, Some("198.51.100.8"), "insp", RIGHT);
    assert_eq!(
        owner.status, 200,
        "the owner is let in while the name is under attack"
    );

    // One client trying one password on many names is throttled after 30, whatever the names.
    for i in 0..30 {
        let name = if i % 2 == 0 {
            format!("spray{i}")
        } else {
            "farmer2".to_owned() + &"x".repeat(i)
        };
        assert_eq!(
            attempt(base, Some("198.51.100.99"), &name, "Summer2026!").status,
            401
        );
    }
    let sprayed = attempt(base, Some("198.51.100.99"), "farmer1", RIGHT);
    assert_eq!(sprayed.status, 429);
    assert_eq!(
        attempt(base, Some("198.51.100.98"), "farmer1", RIGHT).status,
        200
    );
}

fn a_forwarded_address_from_an_untrusted_peer_is_ignored(app: TestApp) {
    let _w = World::build(&app);
    // The test server trusts no proxy: each attempt names another address, all come from 127.0.0.1.
    for i in 0..5 {
        let a = attempt(
            &app.base,
            Some(&format!("203.0.113.{i}")),
            "nobody-here",
            "guess-123456",
        );
        assert_eq!(a.status, 401);
    }
    let a = attempt(
        &app.base,
        Some("203.0.113.77"),
        "nobody-here",
        "guess-123456",
    );
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (429, Some("too_many_attempts"))
    );
    assert!(a.retry_after.is_some());
}

/// `suyuan serve` as an operator starts it: the data folder (here one left world-readable by an older
/// version) becomes owner-only, the SQLite file and its write-ahead log and shared memory are created
/// owner-only, and with an https public host the session cookie is `Secure`.
#[test]
fn serve_keeps_its_files_private_and_its_cookie_secure() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let mut child = std::process::Command::new(crate::support::mqtt::suyuan_binary())
        .args(["serve", "--demo", "--no-gateway", "--listen", &addr])
        .arg("--data")
        .arg(&data)
        .args(["--public-host", "trace.example.cn"])
        .env_remove("DATABASE_URL")
        .env_remove("SUYUAN_SECURE_COOKIES")
        .env_remove("SUYUAN_MEDIA")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{addr}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while ureq::get(&format!("{base}/api/v1/health")).call().is_err() {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("suyuan serve did not come up on {addr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let login = attempt(&base, None, "regulator", suyuan_server::demo::DEMO_PASSWORD);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let modes: Vec<(String, u32)> = [
        "",
        "suyuan.sqlite",
        "suyuan.sqlite-wal",
        "suyuan.sqlite-shm",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), mode(&data.join(name))))
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(login.status, 200, "{:?}", login.body);
    let cookie = login.cookie.unwrap_or_default();
    for part in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            cookie.split(';').any(|p| p.trim() == part),
            "{part} missing: {cookie}"
        );
    }
    assert_eq!(
        modes,
        [
            ("".to_owned(), 0o700),
            ("suyuan.sqlite".to_owned(), 0o600),
            ("suyuan.sqlite-wal".to_owned(), 0o600),
            ("suyuan.sqlite-shm".to_owned(), 0o600),
        ]
    );
}
