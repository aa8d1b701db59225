//! The batch's story on the scan page: product and producer, the farming timeline of the batch and of
//! the batches it came from (pre-harvest intervals checked), inspections, plot photos, cold-store
//! temperatures and the journey. Rendered once per language after the story is built, then reused.

use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, Utc};
use suyuan_core::model::{RecordDetails, RecordKind, Verdict};
use suyuan_core::region;
use suyuan_core::store::public::PublicRecord;

use super::chart::{chart, ChartView};
use super::dates::{date, day_month};
use super::render_error;
use crate::error::ApiError;
use crate::pages::texts::{self, Texts};
use crate::pages::Lang;
use crate::scans::story::StoryData;

/// One entry of the farming timeline or the journey.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub date: String,
    pub kind: &'static str,
    pub title: String,
    pub lines: Vec<String>,
    /// A check shown in green (true) or red (false), e.g. the pre-harvest interval.
    pub check: Option<(bool, String)>,
    pub place: String,
    /// The reasons of the corrections applied.
    pub corrected: Option<String>,
    /// The lot it belongs to, when not the scanned batch.
    pub lot: Option<String>,
}

/// One inspection.
#[derive(Debug, Clone)]
pub struct InspectionView {
    pub at: DateTime<Utc>,
    pub date: String,
    /// The lot inspected, when not the scanned batch.
    pub lot: Option<String>,
    pub org: String,
    pub method: &'static str,
    pub report: Option<String>,
    pub pass: bool,
    pub items: Vec<ItemView>,
}

/// One inspected item.
#[derive(Debug, Clone)]
pub struct ItemView {
    pub name: String,
    pub value: String,
    pub limit: String,
    pub pass: bool,
}

/// A plot photo.
#[derive(Debug, Clone)]
pub struct PhotoView {
    pub thumb: String,
    pub full: String,
    pub date: String,
    pub width: i64,
    pub height: i64,
}

/// The batch's story: product and producer, farming, inspections, photos, temperatures, journey.
#[derive(Template)]
#[template(path = "scan_story.html")]
pub struct StoryView {
    pub t: &'static Texts,
    pub marks: Option<Vec<&'static str>>,
    pub facts: Vec<(&'static str, String)>,
    pub farming: Vec<Entry>,
    pub inspections: Vec<InspectionView>,
    pub photos: Vec<PhotoView>,
    pub charts: Vec<ChartView>,
    pub journey: Vec<Entry>,
}

/// The story's HTML in a language: rendered on the first scan after the story was built, then reused
/// until the story is rebuilt (formatting dates, doses and the chart's points is most of a page's cost).
pub(super) fn story_html(data: &StoryData, lang: Lang) -> Result<std::sync::Arc<str>, ApiError> {
    let slot = &data.rendered[usize::from(lang == Lang::En)];
    if let Some(html) = slot.get() {
        return Ok(html.clone());
    }
    let html: std::sync::Arc<str> =
        Arc::from(story_view(data, lang).render().map_err(render_error)?);
    Ok(slot.get_or_init(|| html).clone())
}

/// The view of a story in a language.
fn story_view(data: &StoryData, lang: Lang) -> StoryView {
    let t = texts::texts(lang);
    let mut facts = Vec::new();
    let mut marks = None;
    let (mut farming, mut inspections, mut journey) = (Vec::new(), Vec::new(), Vec::new());
    {
        let b = &data.story.batch;
        facts.push((t.product, b.product.clone()));
        if let Some(brand) = &b.brand {
            facts.push((t.brand, brand.clone()));
        }
        facts.push((t.lot, b.lot_code.clone()));
        facts.push((t.producer, b.producer.name.clone()));
        // The grower: the batch that started on a plot (the scanned batch may be a packer's).
        let grower = std::iter::once(b)
            .chain(data.story.upstream.iter())
            .find(|x| x.origin_site_id.is_some())
            .map(|x| &x.producer);
        let origin_org = grower.unwrap_or(&b.producer);
        if grower.is_some_and(|g| g.id != b.producer.id) {
            facts.push((t.grower, origin_org.name.clone()));
        }
        let region_name = region::full_name(&origin_org.division_code).unwrap_or_default();
        let address = origin_org.address.clone().unwrap_or_default();
        // Addresses usually repeat the county: show the address, or the county where there is none.
        let origin = if address.is_empty() {
            region_name
        } else {
            address
        };
        if !origin.is_empty() {
            facts.push((
                if grower.is_some() {
                    t.origin
                } else {
                    t.producer
                },
                origin,
            ));
        }
        if let Some(contact) = &b.producer.public_contact {
            facts.push((t.contact, contact.clone()));
        }
        if !b.certifications.is_empty() {
            marks = Some(
                b.certifications
                    .iter()
                    .map(|c| texts::certification(*c, lang))
                    .collect(),
            );
        }
        let batches: Vec<_> = std::iter::once(b)
            .chain(data.story.upstream.iter())
            .collect();
        for batch in &batches {
            let lot = (batch.id != b.id).then(|| batch.lot_code.clone());
            for r in &batch.records {
                let kind = r.details.kind();
                match kind {
                    RecordKind::Sowing
                    | RecordKind::Fertilising
                    | RecordKind::Spraying
                    | RecordKind::Irrigation
                    | RecordKind::Harvest => {
                        farming.push(entry(r, lang, t, lot.clone(), &batch.records));
                    }
                    RecordKind::Processing
                    | RecordKind::Packing
                    | RecordKind::Shipping
                    | RecordKind::Receiving => {
                        journey.push(entry(r, lang, t, lot.clone(), &batch.records));
                    }
                    RecordKind::Inspection => {
                        if let RecordDetails::Inspection(i) = &r.details {
                            inspections.push(InspectionView {
                                at: r.event_time,
                                lot: lot.clone(),
                                date: date(r.event_time, lang),
                                org: r.organisation.clone(),
                                method: if i.method == "rapid_test" {
                                    t.rapid_test
                                } else {
                                    t.lab_test
                                },
                                report: i.report_number.clone(),
                                pass: i.overall == Verdict::Pass,
                                items: i
                                    .items
                                    .iter()
                                    .map(|it| ItemView {
                                        name: it.name.clone(),
                                        value: format!("{} {}", num(it.value), it.unit),
                                        limit: format!("{} {}", num(it.limit), it.unit),
                                        pass: it.result == Verdict::Pass,
                                    })
                                    .collect(),
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        farming.sort_by_key(|e| e.at);
        inspections.sort_by_key(|i| i.at);
        journey.sort_by_key(|e| e.at);
        let photos = data
            .photos
            .iter()
            .map(|p| PhotoView {
                thumb: format!("/b/{}/photos/{}/thumb", b.id.0, p.id),
                full: format!("/b/{}/photos/{}", b.id.0, p.id),
                date: day_month(p.taken_at, lang),
                width: 160,
                height: (160 * p.height.max(1) / p.width.max(1)).clamp(40, 320),
            })
            .collect();
        let charts = data.cold.iter().map(|c| chart(c, lang, t)).collect();
        StoryView {
            t,
            marks,
            facts,
            farming,
            inspections,
            photos,
            charts,
            journey,
        }
    }
}

/// A number without needless decimals.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// One timeline entry of a record.
fn entry(
    r: &PublicRecord,
    lang: Lang,
    t: &Texts,
    lot: Option<String>,
    siblings: &[PublicRecord],
) -> Entry {
    let zh = lang == Lang::Zh;
    let mut lines = Vec::new();
    let mut check = None;
    let title = match &r.details {
        RecordDetails::Sowing(s) => {
            if let Some(src) = &s.seed_source {
                lines.push(src.clone());
            }
            s.variety.clone()
        }
        RecordDetails::Fertilising(x) => {
            lines.push(format!("{} {}", num(x.dose), x.dose_unit));
            if let Some(m) = &x.method {
                lines.push(m.clone());
            }
            x.fertiliser_name.clone()
        }
        RecordDetails::Spraying(x) => {
            lines.push(format!(
                "{} · {} {}{}",
                x.active_ingredient,
                num(x.dose),
                x.dose_unit,
                x.target
                    .as_ref()
                    .map(|tg| if zh {
                        format!(" · 防治{tg}")
                    } else {
                        format!(" · against {tg}")
                    })
                    .unwrap_or_default()
            ));
            if !x.registration_number.is_empty() {
                lines.push(if zh {
                    format!("农药登记证号 {}", x.registration_number)
                } else {
                    format!("Registration {}", x.registration_number)
                });
            }
            let phi = i64::from(x.pre_harvest_interval_days);
            let harvest = siblings
                .iter()
                .filter(|h| matches!(h.details, RecordDetails::Harvest(_)))
                .filter(|h| h.event_time > r.event_time)
                .map(|h| h.event_time)
                .min();
            check = Some(match harvest {
                Some(h) => {
                    let days = (h - r.event_time).num_days();
                    let ok = days >= phi;
                    (
                        ok,
                        if zh {
                            format!(
                                "{} {phi} {} · 施药后第 {days} 天采收，{}",
                                t.phi,
                                t.days,
                                if ok { t.phi_respected } else { t.phi_violated }
                            )
                        } else {
                            format!(
                                "{} {phi} {} · harvested {days} days after spraying: {}",
                                t.phi,
                                t.days,
                                if ok { t.phi_respected } else { t.phi_violated }
                            )
                        },
                    )
                }
                None => (
                    true,
                    format!("{} {phi} {} · {}", t.phi, t.days, t.phi_not_harvested),
                ),
            });
            x.pesticide_name.clone()
        }
        RecordDetails::Irrigation(x) => {
            if let Some(v) = x.volume_m3 {
                lines.push(format!("{} m³", num(v)));
            }
            if let Some(w) = &x.water_source {
                lines.push(w.clone());
            }
            x.method.clone().unwrap_or_default()
        }
        RecordDetails::Harvest(x) => format!("{} {}", num(x.quantity), x.unit),
        RecordDetails::Processing(x) => {
            if let Some(n) = &x.note {
                // Transformations note their inputs as "from LOT, LOT".
                lines.push(match n.strip_prefix("from ") {
                    Some(lots) => format!("{} {lots}", t.from_lot),
                    None => n.clone(),
                });
            }
            match (x.operation.as_str(), zh) {
                ("split", true) => "分级拆分".into(),
                ("merge", true) => "合并".into(),
                ("transform", true) => "加工转化".into(),
                ("split", false) => "Graded and split".into(),
                ("merge", false) => "Merged".into(),
                ("transform", false) => "Transformed".into(),
                (other, _) => other.to_owned(),
            }
        }
        RecordDetails::Packing(x) => {
            if let (Some(q), Some(u)) = (x.net_quantity_per_package, &x.unit) {
                lines.push(if zh {
                    format!("每件净含量 {} {u}", num(q))
                } else {
                    format!("{} {u} net each", num(q))
                });
            }
            format!("{} × {}", x.package_type, x.package_count)
        }
        RecordDetails::Shipping(x) => {
            if let Some(c) = &x.carrier {
                lines.push(c.clone());
            }
            match (x.quantity, &x.unit) {
                (Some(q), Some(u)) => format!("{} {u}", num(q)),
                _ => String::new(),
            }
        }
        RecordDetails::Receiving(x) => {
            if let Some(c) = &x.condition {
                lines.push(c.clone());
            }
            match (x.quantity, &x.unit) {
                (Some(q), Some(u)) => format!("{} {u}", num(q)),
                _ => String::new(),
            }
        }
        _ => String::new(),
    };
    let place = match &r.site {
        Some(site) => format!("{} · {site}", r.organisation),
        None => r.organisation.clone(),
    };
    Entry {
        at: r.event_time,
        date: date(r.event_time, lang),
        kind: texts::record_kind(r.details.kind(), lang),
        title,
        lines,
        check,
        place,
        corrected: (!r.corrections.is_empty()).then(|| r.corrections.join("；")),
        lot,
    }
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_lose_needless_decimals() {
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(1.25), "1.25");
        assert_eq!(num(0.12345), "0.1235");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.00001), "0");
        assert_eq!(num(-3.10), "-3.1");
        assert_eq!(num(1200.0), "1200");
    }
}
