//! Accounts, logins and tokens.

use diesel::prelude::*;

use super::rows::{models, UserRow};
use super::{DbConnection, Page, Paged};
use crate::auth::{self, TokenKind};
use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{Actor, NewUser, Role, User};
use crate::on_backend;
use crate::schema::{auth_tokens::dsl as t, login_throttle::dsl as lt, users::dsl as u};
use crate::time::now_millis;
use crate::{Database, OrgId, UserId};

/// Creates an account in an existing organisation.
pub fn create(conn: &mut DbConnection, new: &NewUser) -> CoreResult<User> {
    new.validate()?;
    super::orgs::get(conn, new.org_id)?;
    let hash = auth::hash_password(&new.password)?;
    let inserted = on_backend!(conn, c => diesel::insert_into(u::users)
        .values((
            u::org_id.eq(new.org_id.0),
            u::username.eq(&new.username),
            u::display_name.eq(&new.display_name),
            u::phone.eq(&new.phone),
            u::role.eq(new.role.as_str()),
            u::password_hash.eq(&hash),
            u::created_at.eq(now_millis()),
        ))
        .returning(UserRow::as_returning())
        .get_result(c));
    match inserted {
        Ok(row) => row.into_model(),
        Err(e) if super::is_unique_violation(&e) => Err(CoreError::conflict(
            "username_taken",
            "this username is taken",
        )),
        Err(e) => Err(e.into()),
    }
}

/// One account.
pub fn get(conn: &mut DbConnection, id: UserId) -> CoreResult<User> {
    on_backend!(conn, c => u::users.find(id.0).select(UserRow::as_select()).first(c))
        .or_not_found("user")?
        .into_model()
}

/// The accounts of an organisation, or of all when `org` is `None`.
pub fn list(conn: &mut DbConnection, org: Option<OrgId>, page: Page) -> CoreResult<Paged<User>> {
    let limit = page.limit()?;
    let rows = on_backend!(conn, c => {
        let mut q = u::users.filter(u::id.gt(page.after())).into_boxed();
        if let Some(org) = org {
            q = q.filter(u::org_id.eq(org.0));
        }
        q.order(u::id).limit(limit + 1).select(UserRow::as_select()).load(c)
    })?;
    Ok(Paged::from_fetched(
        models(rows, UserRow::into_model)?,
        limit,
        |x| x.id.0,
    ))
}

/// What a login attempt came to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The token (shown once) and the account.
    Success(String, User),
    /// Wrong user name or password (401); the same for a name that does not exist.
    Refused(CoreError),
    /// This client may not try this name (or any name) again before `retry_after_secs` (429).
    Throttled {
        error: CoreError,
        retry_after_secs: u64,
    },
}

/// Checks a user name and password coming from `client` and, when they match, issues a token of `kind`.
///
/// `client` is the caller's network identity as the server sees it (its address, or the forwarded address
/// when the peer is a trusted proxy; an IPv6 client by its /64). The password check (argon2, tens of
/// milliseconds) runs outside any transaction.
///
/// # Throttling
///
/// Failures are counted in the database (so every replica sees them) in windows of
/// [`auth::LOGIN_WINDOW_MS`], under three salted keys per attempt: the (name, client) pair, the client,
/// and the name. An attempt is refused (429, before any password check) when:
/// - this client failed [`auth::MAX_FAILURES_PER_NAME_AND_CLIENT`] times on this name (guessing one
///   account from one place);
/// - this client failed [`auth::MAX_FAILURES_PER_CLIENT`] times on any names (spraying from one place);
/// - the name has [`auth::MAX_FAILURES_PER_NAME`] failures from all clients together (it is under
///   attack) *and* this client has failed on it at least once in the window.
///
/// An attempt that is let through is counted as a failure on all three keys before the password is
/// checked (so parallel requests cannot outrun the counters) and given back when the password is right;
/// a success also clears the (name, client) pair, since that client has shown it knows the password.
///
/// What this stops: one client guessing one account (5 guesses per window), one client trying a
/// password on many accounts (30 per window), and many clients guessing one account (once the name is
/// under attack every client gets a single guess per window). What it does not stop: an attacker with
/// many addresses (a botnet, or many IPv6 /64s) still gets one guess per address per window on a name
/// under attack — passwords of at least 8 characters, argon2 and a second factor are the guard there.
/// It never refuses the owner: an attacker's failures block only the attacker's clients, and the owner's
/// right password from a client that has not failed on the name is always checked, even while the name
/// is under attack. An owner who mistyped from the same network as the attacker, or during an attack,
/// waits until the window ends or logs in from another network.
///
/// Unknown names cannot be told from real ones: they are counted under the same keys with the same
/// limits, get the same answers, and cost the same time (their password is checked against
/// [`auth::DUMMY_PASSWORD_HASH`]).
pub fn login(
    db: &Database,
    username: &str,
    password: &str,
    client: &str,
    kind: TokenKind,
) -> CoreResult<LoginOutcome> {
    let (u, cl) = (username.to_owned(), client.to_owned());
    let gate = db.write(move |c| admit(c, &u, &cl, now_millis()))?;
    let (keys, stored) = match gate {
        Gate::Refused { retry_after_ms } => {
            return Ok(LoginOutcome::Throttled {
                error: CoreError::TooManyAttempts(
                    "too many failed logins from this network; try again later".into(),
                ),
                retry_after_secs: u64::try_from((retry_after_ms.max(1) + 999) / 1000).unwrap_or(1),
            })
        }
        Gate::Admitted { keys, user } => (keys, user),
    };
    let matched = match &stored {
        Some((_, hash)) => auth::verify_password(password, hash),
        None => {
            auth::verify_password(password, auth::DUMMY_PASSWORD_HASH);
            false
        }
    };
    let Some((id, _)) = stored.filter(|_| matched) else {
        return Ok(LoginOutcome::Refused(CoreError::Unauthenticated(
            "wrong username or password".into(),
        )));
    };
    db.write(move |c| {
        give_back(c, &keys)?;
        let token = issue_token(c, UserId(id), kind, None)?;
        Ok(LoginOutcome::Success(token, get(c, UserId(id))?))
    })
}

/// The salted keys of one attempt.
#[derive(Debug)]
struct AttemptKeys {
    pair: String,
    client: String,
    name: String,
}

enum Gate {
    Refused {
        retry_after_ms: i64,
    },
    /// Counted; the account's id and password hash when the name exists.
    Admitted {
        keys: AttemptKeys,
        user: Option<(i64, String)>,
    },
}

fn throttle_key(salt: &str, kind: &str, parts: &[&str]) -> String {
    let mut text = format!("{salt}\u{0}{kind}");
    for p in parts {
        text.push('\u{0}');
        text.push_str(p);
    }
    crate::chain::sha256_hex(text.as_bytes())
}

/// Checks the counters, counts the attempt as a failure and reads the account, in one transaction.
fn admit(conn: &mut DbConnection, username: &str, client: &str, now: i64) -> CoreResult<Gate> {
    let salt = super::scans::setting_or_create(conn, "login_throttle_salt", auth::new_token)?;
    let keys = AttemptKeys {
        pair: throttle_key(&salt, "pair", &[username, client]),
        client: throttle_key(&salt, "client", &[client]),
        name: throttle_key(&salt, "name", &[username]),
    };
    let live_after = now - auth::LOGIN_WINDOW_MS;
    on_backend!(conn, c => diesel::delete(lt::login_throttle.filter(lt::window_start.le(live_after))).execute(c))?;
    let wanted = [keys.pair.as_str(), keys.client.as_str(), keys.name.as_str()];
    let rows: Vec<(String, i64, i64)> = on_backend!(conn, c => lt::login_throttle
        .filter(lt::key.eq_any(wanted))
        .select((lt::key, lt::failures, lt::window_start))
        .load(c))?;
    let counter = |key: &str| {
        rows.iter()
            .find(|(k, _, _)| k == key)
            .map_or((0, now), |(_, failures, start)| {
                (*failures, start + auth::LOGIN_WINDOW_MS - now)
            })
    };
    let (pair, pair_left) = counter(&keys.pair);
    let (from_client, client_left) = counter(&keys.client);
    let (on_name, name_left) = counter(&keys.name);
    let refusal = if pair >= auth::MAX_FAILURES_PER_NAME_AND_CLIENT {
        Some(pair_left)
    } else if from_client >= auth::MAX_FAILURES_PER_CLIENT {
        Some(client_left)
    } else if on_name >= auth::MAX_FAILURES_PER_NAME && pair > 0 {
        // Refused until either the name's or this client's record of failures ends.
        Some(pair_left.min(name_left))
    } else {
        None
    };
    if let Some(retry_after_ms) = refusal {
        return Ok(Gate::Refused { retry_after_ms });
    }
    for key in wanted {
        on_backend!(conn, c => diesel::insert_into(lt::login_throttle)
            .values((lt::key.eq(key), lt::failures.eq(1), lt::window_start.eq(now)))
            .on_conflict(lt::key)
            .do_update()
            .set(lt::failures.eq(lt::failures + 1))
            .execute(c))?;
    }
    let user = on_backend!(conn, c => u::users
        .filter(u::username.eq(username))
        .select((u::id, u::password_hash))
        .first(c)
        .optional())?;
    Ok(Gate::Admitted { keys, user })
}

/// Takes back the failure counted for a login that turned out right; the client has shown that it knows
/// the password, so its failures on this name are forgotten too.
fn give_back(conn: &mut DbConnection, keys: &AttemptKeys) -> CoreResult<()> {
    on_backend!(conn, c => diesel::delete(lt::login_throttle.find(&keys.pair)).execute(c))?;
    for key in [&keys.client, &keys.name] {
        on_backend!(conn, c => diesel::update(lt::login_throttle.find(key).filter(lt::failures.gt(0)))
            .set(lt::failures.eq(lt::failures - 1))
            .execute(c))?;
    }
    Ok(())
}

/// Issues a token for a user and returns it (the only time it is visible).
pub fn issue_token(
    conn: &mut DbConnection,
    user: UserId,
    kind: TokenKind,
    label: Option<&str>,
) -> CoreResult<String> {
    let token = auth::new_token();
    let now = now_millis();
    let expires = match kind {
        TokenKind::Session => Some(now + auth::SESSION_TTL_MS),
        TokenKind::Api => None,
    };
    on_backend!(conn, c => diesel::insert_into(t::auth_tokens)
        .values((
            t::token_hash.eq(auth::token_hash(&token)),
            t::user_id.eq(user.0),
            t::kind.eq(kind.as_str()),
            t::label.eq(label),
            t::created_at.eq(now),
            t::expires_at.eq(expires),
        ))
        .execute(c))?;
    Ok(token)
}

/// Revokes a token (logout).
pub fn revoke_token(conn: &mut DbConnection, token: &str) -> CoreResult<()> {
    on_backend!(conn, c => diesel::delete(t::auth_tokens.find(auth::token_hash(token))).execute(c))?;
    Ok(())
}

/// Resolves a token to the acting user, or fails with 401.
pub fn actor_for_token(conn: &mut DbConnection, token: &str) -> CoreResult<Actor> {
    let now = now_millis();
    let found: Option<(i64, i64, String)> = on_backend!(conn, c => t::auth_tokens
        .inner_join(u::users)
        .filter(t::token_hash.eq(auth::token_hash(token)))
        .filter(t::expires_at.is_null().or(t::expires_at.gt(now)))
        .select((u::id, u::org_id, u::role))
        .first(c)
        .optional())?;
    let (user_id, org_id, role) = found
        .ok_or_else(|| CoreError::Unauthenticated("session expired or token invalid".into()))?;
    let role = Role::parse(&role)
        .ok_or_else(|| CoreError::Internal(format!("unexpected role {role:?}")))?;
    Ok(Actor {
        user_id: UserId(user_id),
        org_id: OrgId(org_id),
        role,
    })
}
