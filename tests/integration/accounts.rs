//! Logins, sessions, tokens and lockout.

use serde_json::json;

use crate::support::{TestApp, World};

crate::both_backends!(login_session_cookie_and_lockout);

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

    // Five failures in a row lock the account (429), even for the right password.
    for _ in 0..5 {
        assert_eq!(login("wrong-password").0, 401);
    }
    let (s, e) = login("correct-horse-battery");
    assert_eq!((s, e["error"].as_str()), (429, Some("too_many_attempts")));
}
