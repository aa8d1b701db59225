//! What the gateway refused, counted per reason over every replica, with the newest example of each.

use diesel::prelude::*;

use crate::error::{CoreError, CoreResult};
use crate::model::{Actor, RefusalCount};
use crate::on_backend;
use crate::policy;
use crate::schema::gateway_refusals::dsl as gr;
use crate::store::DbConnection;
use crate::time::to_datetime;

/// Refusals to add for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalDelta {
    pub reason: String,
    pub refused: i64,
    /// The newest refused message of this reason seen since the last flush, if it was kept.
    pub last: Option<RefusalExample>,
}

/// What is kept of a refused message: when, its topic and why (never its payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalExample {
    pub at: i64,
    pub topic: String,
    pub detail: String,
}

/// Adds refusal counts (summed over replicas) and keeps the newest example of each reason.
pub fn add_refusals(conn: &mut DbConnection, deltas: &[RefusalDelta]) -> CoreResult<()> {
    for delta in deltas.iter().filter(|x| x.refused > 0) {
        let example = delta.last.clone().unwrap_or(RefusalExample {
            at: 0,
            topic: String::new(),
            detail: String::new(),
        });
        on_backend!(conn, c => diesel::insert_into(gr::gateway_refusals)
            .values((
                gr::reason.eq(&delta.reason),
                gr::refused.eq(delta.refused),
                gr::last_at.eq(example.at),
                gr::last_topic.eq(&example.topic),
                gr::last_detail.eq(&example.detail),
            ))
            .on_conflict(gr::reason)
            .do_update()
            .set(gr::refused.eq(gr::refused + delta.refused))
            .execute(c))?;
        if let Some(last) = &delta.last {
            on_backend!(conn, c => diesel::update(
                    gr::gateway_refusals
                        .filter(gr::reason.eq(&delta.reason))
                        .filter(gr::last_at.le(last.at)),
                )
                .set((
                    gr::last_at.eq(last.at),
                    gr::last_topic.eq(&last.topic),
                    gr::last_detail.eq(&last.detail),
                ))
                .execute(c))?;
        }
    }
    Ok(())
}

/// Refusal counts per reason (operators and regulators).
pub fn refusals(conn: &mut DbConnection, actor: &Actor) -> CoreResult<Vec<RefusalCount>> {
    if !policy::reads_all(actor) {
        return Err(CoreError::forbidden(
            "the gateway's refusals are for operators and regulators",
        ));
    }
    let rows: Vec<(String, i64, i64, String, String)> = on_backend!(conn, c => gr::gateway_refusals
        .order(gr::reason)
        .select((gr::reason, gr::refused, gr::last_at, gr::last_topic, gr::last_detail))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(
            |(reason, refused, last_at, last_topic, last_detail)| RefusalCount {
                reason,
                refused,
                last_at: to_datetime(last_at),
                last_topic,
                last_detail,
            },
        )
        .collect())
}
