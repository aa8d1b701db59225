//! Accounts, logins and tokens.

use diesel::prelude::*;

use super::rows::{models, UserRow};
use super::{DbConnection, Page, Paged};
use crate::auth::{self, TokenKind};
use crate::error::{CoreError, CoreResult, OptionalExt};
use crate::model::{Actor, NewUser, Role, User};
use crate::on_backend;
use crate::schema::{auth_tokens::dsl as t, users::dsl as u};
use crate::time::now_millis;
use crate::{OrgId, UserId};

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
            u::failed_logins.eq(0),
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

/// What a login attempt came to. A refusal is an `Ok` outcome so that the caller's transaction commits the
/// failure count it recorded.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The token (shown once) and the account.
    Success(String, User),
    /// Wrong credentials (401) or a locked account (429).
    Refused(CoreError),
}

/// Checks a username and password and, when they match, issues a token of `kind`.
///
/// Failed attempts are counted on the account (so every replica sees them); after
/// [`auth::MAX_FAILED_LOGINS`] in a row the account refuses logins for [`auth::LOCKOUT_MS`] (429). An unknown
/// username and a wrong password get the same answer.
pub fn login(
    conn: &mut DbConnection,
    username: &str,
    password: &str,
    kind: TokenKind,
) -> CoreResult<LoginOutcome> {
    let bad = || CoreError::Unauthenticated("wrong username or password".into());
    let now = now_millis();
    let row = on_backend!(conn, c => u::users.filter(u::username.eq(username)).select(UserRow::as_select()).first(c).optional())?;
    let Some(row) = row else {
        // Spend the same time as a real check so that usernames cannot be probed by timing.
        let _ = auth::verify_password(password, "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Z0pbU3v3sdKzXcxUN6fq1T3mGJfmXNEYqyl0TFDhGc");
        return Ok(LoginOutcome::Refused(bad()));
    };
    if row.locked_until.is_some_and(|until| until > now) {
        return Ok(LoginOutcome::Refused(CoreError::TooManyAttempts(
            "too many failed logins; try again in 15 minutes".into(),
        )));
    }
    if !auth::verify_password(password, &row.password_hash) {
        let failed = row.failed_logins + 1;
        let lock = (failed >= auth::MAX_FAILED_LOGINS).then_some(now + auth::LOCKOUT_MS);
        on_backend!(conn, c => diesel::update(u::users.find(row.id))
            .set((u::failed_logins.eq(if lock.is_some() { 0 } else { failed }), u::locked_until.eq(lock)))
            .execute(c))?;
        return Ok(LoginOutcome::Refused(bad()));
    }
    if row.failed_logins != 0 || row.locked_until.is_some() {
        on_backend!(conn, c => diesel::update(u::users.find(row.id))
            .set((u::failed_logins.eq(0), u::locked_until.eq(None::<i64>)))
            .execute(c))?;
    }
    let token = issue_token(conn, UserId(row.id), kind, None)?;
    Ok(LoginOutcome::Success(token, row.into_model()?))
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
