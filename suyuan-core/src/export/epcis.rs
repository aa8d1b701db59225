//! Tracking events as a GS1 EPCIS 2.0 JSON-LD document.
//!
//! - A record is an `ObjectEvent` about its lot (a quantity element of the lot's class); a transformation
//!   is one `TransformationEvent` with every input and output lot (its entries in the outputs' chains are not
//!   written again as object events).
//! - `bizStep` and `disposition` are CBV 2.0 standard values ([`vocabulary`]); farming operations, processing
//!   and notes, which the CBV has no step for, are `other`, and the platform's own event type is in
//!   `suyuan:eventType`.
//! - Quantities carry UN/CEFACT units ([`super::units`]); a unit without a code leaves the quantity element
//!   with its class alone and puts the quantity as recorded in `suyuan:unmappedQuantity`.
//! - Identifiers: a lot of a product with a GTIN is its canonical GS1 Digital Link URI
//!   (`https://id.gs1.org/01/{gtin}/10/{lot}`); lots without one, sites, organisations and transformations are
//!   named by URIs under the platform's public address (`https://HOST/id/lot/{batch id}`, `/id/site/…`,
//!   `/id/org/…`, `/id/transformation/…`), which name, they do not resolve.
//! - Event ids are stable: `urn:uuid:` with a name-based (v5) UUID of the organisation and the client id the
//!   record or transformation was sent under, which the platform keeps unique; the same event has the same id
//!   in every export.
//! - A correction is an error declaration: the event as first recorded carries `errorDeclaration`
//!   (`declarationTime` when the correction was received, `reason` `incorrect_data` or, for a retraction,
//!   `did_not_occur`, `correctiveEventIDs` naming the corrected event, the reason's words in
//!   `suyuan:reason`), and the corrected event follows with the correction's own id. A record corrected
//!   twice gives three events, each declared in error by the next.
//! - The platform's fields that EPCIS has no place for (lot code, product description, the record's typed
//!   details, the reference document: record id, client id, chain hash) are extension fields under the
//!   `suyuan` prefix, declared in the document's `@context`.

use std::collections::HashSet;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::units;
use crate::error::{CoreError, CoreResult};
use crate::model::{
    EventVersion, Lot, LotAmount, Place, RecordDetails, TrackedEvent, TrackingEventType,
    TransformationInfo, Verdict,
};
use crate::time::in_china;
use crate::TransformationId;

/// The context every EPCIS 2.0 JSON-LD document names.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";

/// How an event is written in EPCIS: type, action, CBV business step and disposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vocabulary {
    pub action: &'static str,
    pub biz_step: &'static str,
    pub disposition: Option<&'static str>,
}

/// The CBV business step and disposition of a tracking event (`details` are the ones in force, for an
/// inspection's verdict).
pub fn vocabulary(event_type: TrackingEventType, details: &RecordDetails) -> Vocabulary {
    let v = |action, biz_step, disposition| Vocabulary {
        action,
        biz_step,
        disposition,
    };
    match event_type {
        TrackingEventType::Sowing
        | TrackingEventType::Fertilising
        | TrackingEventType::Spraying
        | TrackingEventType::Irrigation
        | TrackingEventType::Processing
        | TrackingEventType::Note => v("OBSERVE", "other", None),
        // The lot comes into being as a traceable quantity at harvest.
        TrackingEventType::Harvesting => v("ADD", "commissioning", Some("active")),
        TrackingEventType::Cooling => v("OBSERVE", "storing", Some("active")),
        TrackingEventType::InitialPacking | TrackingEventType::Packing => {
            v("OBSERVE", "packing", Some("active"))
        }
        TrackingEventType::Transformation => v("OBSERVE", "commissioning", Some("active")),
        TrackingEventType::Inspection => {
            let passed = match details {
                RecordDetails::Inspection(i) => i.overall == Verdict::Pass,
                _ => true,
            };
            v(
                "OBSERVE",
                "inspecting",
                Some(if passed {
                    "conformant"
                } else {
                    "non_conformant"
                }),
            )
        }
        TrackingEventType::Shipping => v("OBSERVE", "shipping", Some("in_transit")),
        TrackingEventType::Receiving => v("OBSERVE", "receiving", Some("in_progress")),
        TrackingEventType::Recall => v("OBSERVE", "holding", Some("recalled")),
    }
}

/// Where identifiers that have no GS1 key are named.
#[derive(Debug, Clone)]
pub struct Identifiers {
    /// The platform's public address, `https://host`, without a trailing slash.
    pub base: String,
}

impl Identifiers {
    /// The class (lot) identifier of a batch.
    pub fn lot(&self, lot: &Lot) -> String {
        match lot.product.gtin.as_deref().filter(|g| !g.is_empty()) {
            Some(gtin) => format!(
                "https://id.gs1.org/01/{gtin:0>14}/10/{}",
                percent(&lot.batch.lot_code)
            ),
            None => format!("{}/id/lot/{}", self.base, lot.batch.id),
        }
    }

    fn site(&self, id: crate::SiteId) -> String {
        format!("{}/id/site/{id}", self.base)
    }

    fn org(&self, id: crate::OrgId) -> String {
        format!("{}/id/org/{id}", self.base)
    }

    fn transformation(&self, id: TransformationId) -> String {
        format!("{}/id/transformation/{id}", self.base)
    }
}

/// A lot code in a URI path: its characters are letters, digits and `-_./`; `/` is escaped.
fn percent(lot: &str) -> String {
    lot.replace('/', "%2F")
}

/// The namespace of event ids (a fixed name-based UUID, so ids never change between versions).
fn namespace() -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"suyuan:epcis:event")
}

/// The stable id of the event a record (or a correction) stands for.
pub fn record_event_id(org: crate::OrgId, client_id: &uuid::Uuid) -> String {
    let name = format!("record:{org}:{client_id}");
    format!(
        "urn:uuid:{}",
        uuid::Uuid::new_v5(&namespace(), name.as_bytes())
    )
}

/// The stable id of a transformation's event.
pub fn transformation_event_id(org: crate::OrgId, client_id: &str) -> String {
    let name = format!("transformation:{org}:{client_id}");
    format!(
        "urn:uuid:{}",
        uuid::Uuid::new_v5(&namespace(), name.as_bytes())
    )
}

/// A time as EPCIS writes it, in China time.
fn time(t: DateTime<Utc>) -> String {
    in_china(t).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// The quantity element of `lot` (its class alone when the amount is unknown or its unit has no code),
/// and the amount as recorded when its unit has none.
fn quantity_element(
    ids: &Identifiers,
    lot: &Lot,
    amount: Option<(f64, &str)>,
) -> (Value, Option<String>) {
    let class = ids.lot(lot);
    match amount {
        None => (json!({ "epcClass": class }), None),
        Some((value, unit)) => match units::measure(value, unit) {
            Some(m) => (
                json!({ "epcClass": class, "quantity": m.value, "uom": m.code }),
                None,
            ),
            None => (
                json!({ "epcClass": class }),
                Some(format!(
                    "{} {} {unit}",
                    lot.batch.lot_code,
                    super::rows::number(value)
                )),
            ),
        },
    }
}

fn party_and_location(ids: &Identifiers, place: &Place, key: &str) -> Vec<Value> {
    let mut out = vec![json!({ "type": "owning_party", key: ids.org(place.org.id) })];
    if let Some(site) = &place.site {
        out.push(json!({ "type": "location", key: ids.site(site.id) }));
    }
    out
}

/// Writes an EPCIS document event by event, so that a large export is never held in memory.
pub struct EpcisWriter<W: Write> {
    out: W,
    ids: Identifiers,
    first: bool,
    /// Transformations written already (each has an entry on every output; it is written once).
    written: HashSet<TransformationId>,
}

fn io(e: std::io::Error) -> CoreError {
    CoreError::Internal(format!("writing the EPCIS document: {e}"))
}

impl<W: Write> EpcisWriter<W> {
    /// Starts the document.
    pub fn new(mut out: W, ids: Identifiers, created: DateTime<Utc>) -> CoreResult<Self> {
        let context = json!([EPCIS_CONTEXT, { "suyuan": format!("{}/ns/epcis#", ids.base) }]);
        write!(
            out,
            "{{\"@context\":{context},\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\
             \"creationDate\":{},\"epcisBody\":{{\"eventList\":[",
            json!(time(created))
        )
        .map_err(io)?;
        Ok(EpcisWriter {
            out,
            ids,
            first: true,
            written: HashSet::new(),
        })
    }

    fn put(&mut self, event: &Value) -> CoreResult<()> {
        if !self.first {
            self.out.write_all(b",\n").map_err(io)?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, event)
            .map_err(|e| CoreError::Internal(format!("writing the EPCIS document: {e}")))
    }

    /// Writes the events of one tracking event (one, or one per version when it was corrected).
    pub fn write(&mut self, event: &TrackedEvent) -> CoreResult<()> {
        if let Some(t) = &event.transformation {
            if self.written.insert(t.id) {
                let value = transformation_event(&self.ids, t, event);
                self.put(&value)?;
            }
            return Ok(());
        }
        for value in object_events(&self.ids, event) {
            self.put(&value)?;
        }
        Ok(())
    }

    /// Closes the document and hands back the output.
    pub fn finish(mut self) -> CoreResult<W> {
        self.out.write_all(b"]}}\n").map_err(io)?;
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

/// The object events of a record: one per version that has details, each declared in error by the next.
pub fn object_events(ids: &Identifiers, event: &TrackedEvent) -> Vec<Value> {
    let versions = event.versions();
    let id_of = |v: &EventVersion<'_>| match v.correction {
        Some(c) => record_event_id(c.org_id, &c.client_id),
        None => record_event_id(event.record.org_id, &event.record.client_id),
    };
    let mut out = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let Some(details) = version.details else {
            continue;
        };
        let mut value = object_event(ids, event, details, version);
        if let (Some(next), Value::Object(map)) = (versions.get(i + 1), &mut value) {
            if let Some(c) = next.correction {
                let mut declaration = Map::new();
                declaration.insert("declarationTime".into(), json!(time(c.received_at)));
                let reason = if next.details.is_some() {
                    "incorrect_data"
                } else {
                    "did_not_occur"
                };
                declaration.insert("reason".into(), json!(reason));
                if next.details.is_some() {
                    declaration.insert("correctiveEventIDs".into(), json!([id_of(next)]));
                }
                declaration.insert("suyuan:reason".into(), json!(next.reason.unwrap_or("")));
                map.insert("errorDeclaration".into(), Value::Object(declaration));
            }
        }
        if let Value::Object(map) = &mut value {
            map.insert("eventID".into(), json!(id_of(version)));
        }
        out.push(value);
    }
    out
}

fn object_event(
    ids: &Identifiers,
    event: &TrackedEvent,
    details: &RecordDetails,
    version: &EventVersion<'_>,
) -> Value {
    let lot = &event.lot;
    let vocab = vocabulary(event.event_type, details);
    let amount = event.quantity();
    let (element, unmapped) =
        quantity_element(ids, lot, amount.as_ref().map(|(q, u)| (*q, u.as_str())));
    let recorded = version.correction.unwrap_or(&event.record);
    let mut m = Map::new();
    m.insert("type".into(), json!("ObjectEvent"));
    m.insert("eventTime".into(), json!(time(event.record.event_time)));
    m.insert("eventTimeZoneOffset".into(), json!("+08:00"));
    m.insert("recordTime".into(), json!(time(recorded.received_at)));
    m.insert("action".into(), json!(vocab.action));
    m.insert("quantityList".into(), json!([element]));
    m.insert("bizStep".into(), json!(vocab.biz_step));
    if let Some(d) = vocab.disposition {
        m.insert("disposition".into(), json!(d));
    }
    if let Some(site) = &event.at.site {
        m.insert("readPoint".into(), json!({ "id": ids.site(site.id) }));
        m.insert("bizLocation".into(), json!({ "id": ids.site(site.id) }));
    }
    if let Some(from) = &event.ship_from {
        m.insert(
            "sourceList".into(),
            json!(party_and_location(ids, from, "source")),
        );
    }
    if let Some(to) = &event.ship_to {
        m.insert(
            "destinationList".into(),
            json!(party_and_location(ids, to, "destination")),
        );
    }
    if vocab.action == "ADD" {
        m.insert(
            "ilmd".into(),
            json!({
                "suyuan:lotCode": lot.batch.lot_code,
                "suyuan:product": super::rows::product_description(event),
            }),
        );
    }
    m.insert("suyuan:eventType".into(), json!(event.event_type.as_str()));
    m.insert("suyuan:lotCode".into(), json!(lot.batch.lot_code));
    m.insert(
        "suyuan:product".into(),
        json!(super::rows::product_description(event)),
    );
    m.insert("suyuan:recordedBy".into(), json!(event.at.org.name));
    if let Some(u) = unmapped {
        m.insert("suyuan:unmappedQuantity".into(), json!(u));
    }
    m.insert("suyuan:details".into(), json!(details));
    m.insert(
        "suyuan:record".into(),
        json!({
            "id": recorded.id,
            "clientId": recorded.client_id,
            "batchId": recorded.batch_id,
            "seq": recorded.seq,
            "sha256": recorded.hash,
        }),
    );
    Value::Object(m)
}

fn transformation_event(ids: &Identifiers, t: &TransformationInfo, entry: &TrackedEvent) -> Value {
    let list = |amounts: &[LotAmount], unmapped: &mut Vec<String>| -> Vec<Value> {
        amounts
            .iter()
            .map(|a| {
                let (element, lost) = quantity_element(ids, &a.lot, Some((a.quantity, &a.unit)));
                unmapped.extend(lost);
                element
            })
            .collect()
    };
    let mut unmapped = Vec::new();
    let inputs = list(&t.inputs, &mut unmapped);
    let outputs = list(&t.outputs, &mut unmapped);
    let vocab = vocabulary(TrackingEventType::Transformation, &entry.record.details);
    let mut m = Map::new();
    m.insert("type".into(), json!("TransformationEvent"));
    m.insert("eventTime".into(), json!(time(t.event_time)));
    m.insert("eventTimeZoneOffset".into(), json!("+08:00"));
    m.insert("recordTime".into(), json!(time(entry.record.received_at)));
    m.insert(
        "eventID".into(),
        json!(transformation_event_id(t.org_id, &t.client_id)),
    );
    m.insert("inputQuantityList".into(), json!(inputs));
    m.insert("outputQuantityList".into(), json!(outputs));
    m.insert("transformationID".into(), json!(ids.transformation(t.id)));
    m.insert("bizStep".into(), json!(vocab.biz_step));
    if let Some(d) = vocab.disposition {
        m.insert("disposition".into(), json!(d));
    }
    if let Some(site) = &entry.at.site {
        m.insert("readPoint".into(), json!({ "id": ids.site(site.id) }));
        m.insert("bizLocation".into(), json!({ "id": ids.site(site.id) }));
    }
    m.insert("suyuan:eventType".into(), json!("transformation"));
    m.insert("suyuan:transformationKind".into(), json!(t.kind.as_str()));
    m.insert(
        "suyuan:inputLots".into(),
        json!(t
            .inputs
            .iter()
            .map(|a| a.lot.batch.lot_code.as_str())
            .collect::<Vec<_>>()),
    );
    m.insert(
        "suyuan:outputLots".into(),
        json!(t
            .outputs
            .iter()
            .map(|a| a.lot.batch.lot_code.as_str())
            .collect::<Vec<_>>()),
    );
    m.insert("suyuan:recordedBy".into(), json!(entry.at.org.name));
    if !unmapped.is_empty() {
        m.insert("suyuan:unmappedQuantity".into(), json!(unmapped.join("；")));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Inspection, InspectionItem, Note};

    fn inspection(overall: Verdict) -> RecordDetails {
        RecordDetails::Inspection(Inspection {
            method: "rapid_test".into(),
            items: vec![InspectionItem {
                name: "有机磷".into(),
                value: 10.0,
                unit: "%".into(),
                limit: 50.0,
                result: Verdict::Pass,
            }],
            report_number: None,
            overall,
        })
    }

    #[test]
    fn business_steps_and_dispositions_are_cbv_values() {
        let note = RecordDetails::Note(Note { text: "x".into() });
        let v = |t| vocabulary(t, &note);
        assert_eq!(
            v(TrackingEventType::Harvesting),
            Vocabulary {
                action: "ADD",
                biz_step: "commissioning",
                disposition: Some("active")
            }
        );
        assert_eq!(v(TrackingEventType::Shipping).biz_step, "shipping");
        assert_eq!(
            v(TrackingEventType::Shipping).disposition,
            Some("in_transit")
        );
        assert_eq!(v(TrackingEventType::Receiving).biz_step, "receiving");
        assert_eq!(v(TrackingEventType::Cooling).biz_step, "storing");
        assert_eq!(v(TrackingEventType::InitialPacking).biz_step, "packing");
        assert_eq!(v(TrackingEventType::Recall).disposition, Some("recalled"));
        assert_eq!(v(TrackingEventType::Spraying).biz_step, "other");
        assert_eq!(
            vocabulary(TrackingEventType::Inspection, &inspection(Verdict::Pass)).disposition,
            Some("conformant")
        );
        assert_eq!(
            vocabulary(TrackingEventType::Inspection, &inspection(Verdict::Fail)).disposition,
            Some("non_conformant")
        );
        // Every value is one of the CBV 2.0 standard words the EPCIS schema lists.
        let steps = [
            "commissioning",
            "inspecting",
            "other",
            "packing",
            "receiving",
            "shipping",
            "storing",
            "holding",
        ];
        let dispositions = [
            "active",
            "conformant",
            "non_conformant",
            "in_transit",
            "in_progress",
            "recalled",
        ];
        for t in TrackingEventType::ALL {
            let voc = vocabulary(*t, &note);
            assert!(steps.contains(&voc.biz_step), "{t}");
            assert!(
                voc.disposition.is_none_or(|d| dispositions.contains(&d)),
                "{t}"
            );
            assert!(["ADD", "OBSERVE"].contains(&voc.action));
        }
    }

    #[test]
    fn event_ids_are_stable_and_distinct() {
        let client = uuid::Uuid::nil();
        let a = record_event_id(crate::OrgId(1), &client);
        assert_eq!(a, record_event_id(crate::OrgId(1), &client));
        assert_ne!(a, record_event_id(crate::OrgId(2), &client));
        assert!(a.starts_with("urn:uuid:"));
        assert_ne!(
            transformation_event_id(crate::OrgId(1), &client.to_string()),
            a
        );
    }
}
