//! The spreadsheet: one row per tracking event with its key data elements, FSMA 204 style (event type,
//! traceability lot code, product description, quantity and unit, location descriptions, event time,
//! reference document), plus what the platform adds (the input lots of a transformation, a summary of the
//! details, corrections with their reasons). CSV and XLSX write the same rows.
//!
//! Texts are Chinese first with the English name beside (headers `事件类型 Event type`), times are China
//! time (UTC+8), and a row shows the event as corrected; the corrections' reasons and the reference document
//! (record id, client id, SHA-256 of the record in its chain) let an auditor find the history.

use chrono::{DateTime, Utc};

use crate::model::{
    CorrectionState, Inspection, LotAmount, Place, RecordDetails, TrackedEvent, Verdict,
};
use crate::region;
use crate::time::in_china;

/// A cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// Written in China time: ISO 8601 with `+08:00` in CSV, a date-time cell in XLSX.
    Time(DateTime<Utc>),
}

impl Cell {
    fn text(s: impl Into<String>) -> Cell {
        let s = s.into();
        if s.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(s)
        }
    }

    fn opt(s: Option<impl Into<String>>) -> Cell {
        s.map_or(Cell::Empty, Cell::text)
    }

    /// The cell as CSV text.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Number(n) => number(*n),
            Cell::Time(t) => iso_china(*t),
        }
    }
}

/// A time as ISO 8601 in China time, to the second: `2026-10-03T08:12:00+08:00`.
pub fn iso_china(t: DateTime<Utc>) -> String {
    in_china(t).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A number without a needless `.0`.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// A column: its header and its width in characters in the workbook.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub width: f64,
}

const fn col(header: &'static str, width: f64) -> Column {
    Column { header, width }
}

/// The columns, in order.
pub const COLUMNS: [Column; 23] = [
    col("事件类型 Event type", 16.0),
    col("事件 Event", 10.0),
    col("关键追溯事件 FSMA CTE", 12.0),
    col("追溯批次号 Traceability lot code", 22.0),
    col("批次编号 Batch ID", 10.0),
    col("产品 Product description", 28.0),
    col("GTIN", 16.0),
    col("数量 Quantity", 12.0),
    col("单位 Unit", 8.0),
    col("发生时间(北京时间) Event time (UTC+8)", 20.0),
    col("地点 Location", 18.0),
    col("地点地址 Location address", 28.0),
    col("记录组织 Recorded by", 22.0),
    col("发货地 Ship from", 36.0),
    col("收货地 Ship to", 36.0),
    col("投入批次 Input lots", 30.0),
    col("详情 Details", 48.0),
    col("更正状态 Correction state", 14.0),
    col("更正原因 Corrections", 36.0),
    col("记录编号 Record ID", 10.0),
    col("客户端编号 Client ID", 38.0),
    col("记录哈希 Record SHA-256", 66.0),
    col("接收时间 Received at (UTC+8)", 20.0),
];

/// The index of the event time column (a date-time cell in the workbook).
pub const EVENT_TIME_COLUMN: usize = 9;

/// The row of one event.
pub fn row(event: &TrackedEvent) -> Vec<Cell> {
    let lot = &event.lot;
    let (quantity, unit) = match event.quantity() {
        Some((q, u)) => (Cell::Number(q), Cell::text(u)),
        None => (Cell::Empty, Cell::Empty),
    };
    let site = event.at.site.as_deref();
    let corrections: Vec<String> = event
        .versions()
        .iter()
        .filter_map(|v| {
            let c = v.correction?;
            let what = if v.details.is_some() {
                "更正"
            } else {
                "撤销"
            };
            Some(format!(
                "{} {what}（记录 {}）：{}",
                iso_china(c.received_at),
                c.id,
                v.reason.unwrap_or_default()
            ))
        })
        .collect();
    let details = match event.details() {
        Some(d) => summary(d),
        None => format!("已撤销：{}", summary(&event.record.details)),
    };
    vec![
        Cell::text(event.event_type.as_str()),
        Cell::text(event.event_type.chinese()),
        Cell::text(if event.event_type.is_critical() {
            "是 yes"
        } else {
            "否 no"
        }),
        Cell::text(lot.batch.lot_code.as_str()),
        Cell::Number(lot.batch.id.0 as f64),
        Cell::text(product_description(event)),
        Cell::opt(lot.product.gtin.clone()),
        quantity,
        unit,
        Cell::Time(event.record.event_time),
        Cell::opt(site.map(|s| s.name.clone())),
        Cell::opt(address(&event.at)),
        Cell::text(event.at.org.name.as_str()),
        Cell::opt(event.ship_from.as_ref().map(describe)),
        Cell::opt(event.ship_to.as_ref().map(describe)),
        Cell::opt(event.transformation.as_ref().map(|t| inputs(&t.inputs))),
        Cell::text(details),
        Cell::text(match event.state() {
            CorrectionState::Original => "原始 original",
            CorrectionState::Corrected => "已更正 corrected",
            CorrectionState::Retracted => "已撤销 retracted",
        }),
        Cell::text(corrections.join("；")),
        Cell::Number(event.record.id.0 as f64),
        Cell::text(event.record.client_id.to_string()),
        Cell::text(event.record.hash.as_str()),
        Cell::Time(event.record.received_at),
    ]
}

/// `华宁柑橘（青龙，水果）`: the name, the brand and the category.
pub fn product_description(event: &TrackedEvent) -> String {
    let p = &event.lot.product;
    let extra: Vec<&str> = p
        .brand
        .as_deref()
        .into_iter()
        .chain([p.category.as_str()])
        .filter(|s| !s.is_empty())
        .collect();
    if extra.is_empty() {
        p.name.clone()
    } else {
        format!("{}（{}）", p.name, extra.join("，"))
    }
}

/// A place's address: the site's, else its division's name, else the organisation's address.
pub fn address(place: &Place) -> Option<String> {
    let site = place.site.as_deref();
    site.and_then(|s| s.address.clone())
        .or_else(|| site.and_then(|s| region::full_name(&s.division_code)))
        .or_else(|| place.org.address.clone())
        .or_else(|| region::full_name(&place.org.division_code))
}

/// `包装线，云南省玉溪市华宁县，果品加工厂`: site, address and organisation.
pub fn describe(place: &Place) -> String {
    let site = place.site.as_deref().map(|s| s.name.clone());
    site.into_iter()
        .chain(address(place))
        .chain([place.org.name.clone()])
        .collect::<Vec<_>>()
        .join("，")
}

fn inputs(amounts: &[LotAmount]) -> String {
    amounts
        .iter()
        .map(|a| format!("{} {} {}", a.lot.batch.lot_code, number(a.quantity), a.unit))
        .collect::<Vec<_>>()
        .join("；")
}

fn join(parts: Vec<Option<String>>) -> String {
    parts.into_iter().flatten().collect::<Vec<_>>().join("；")
}

fn inspection(i: &Inspection) -> String {
    let verdict = |v: Verdict| match v {
        Verdict::Pass => "合格",
        Verdict::Fail => "不合格",
    };
    let method = if i.method == "rapid_test" {
        "农残速测"
    } else {
        "实验室检测"
    };
    let items: Vec<String> = i
        .items
        .iter()
        .map(|it| {
            format!(
                "{} {} {}（限量 {}）{}",
                it.name,
                number(it.value),
                it.unit,
                number(it.limit),
                verdict(it.result)
            )
        })
        .collect();
    join(vec![
        Some(format!("{method}：{}", verdict(i.overall))),
        i.report_number.as_ref().map(|r| format!("报告 {r}")),
        Some(items.join("，")),
    ])
}

/// The details in a line a person reads.
pub fn summary(details: &RecordDetails) -> String {
    let n = |v: f64| number(v);
    match details {
        RecordDetails::Sowing(s) => join(vec![
            Some(format!("品种 {}", s.variety)),
            s.seed_source.as_ref().map(|x| format!("种源 {x}")),
            s.quantity
                .map(|q| format!("{} {}", n(q), s.unit.as_deref().unwrap_or(""))),
            s.note.clone(),
        ]),
        RecordDetails::Fertilising(f) => join(vec![
            Some(f.fertiliser_name.clone()),
            f.fertiliser_type.clone(),
            f.registration_number
                .as_ref()
                .map(|r| format!("登记证号 {r}")),
            Some(format!("{} {}", n(f.dose), f.dose_unit)),
            f.method.clone(),
        ]),
        RecordDetails::Spraying(s) => join(vec![
            Some(format!("{} {}", s.pesticide_name, s.registration_number)),
            Some(format!("有效成分 {}", s.active_ingredient)),
            Some(format!("{} {}", n(s.dose), s.dose_unit)),
            Some(format!("安全间隔期 {} 天", s.pre_harvest_interval_days)),
            s.target.as_ref().map(|t| format!("防治 {t}")),
        ]),
        RecordDetails::Irrigation(i) => join(vec![
            i.method.clone(),
            i.water_source.as_ref().map(|w| format!("水源 {w}")),
            i.volume_m3.map(|v| format!("{} m³", n(v))),
        ]),
        RecordDetails::Harvest(h) => format!("采收 {} {}", n(h.quantity), h.unit),
        RecordDetails::Processing(p) => join(vec![Some(p.operation.clone()), p.note.clone()]),
        RecordDetails::Packing(p) => join(vec![
            Some(format!("{} × {}", p.package_count, p.package_type)),
            p.net_quantity_per_package
                .map(|q| format!("每件净含量 {} {}", n(q), p.unit.as_deref().unwrap_or(""))),
        ]),
        RecordDetails::Inspection(i) => inspection(i),
        RecordDetails::Shipping(s) => join(vec![
            s.carrier.as_ref().map(|c| format!("承运 {c}")),
            s.vehicle_plate.as_ref().map(|v| format!("车牌 {v}")),
        ]),
        RecordDetails::Receiving(r) => {
            join(vec![r.condition.as_ref().map(|c| format!("状况 {c}"))])
        }
        RecordDetails::Note(note) => note.text.clone(),
        RecordDetails::Recall(r) => format!("召回：{}（起源批次 {}）", r.reason, r.origin_batch_id),
        RecordDetails::Correction(c) => format!("更正记录 {}：{}", c.supersedes, c.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_and_times_as_a_spreadsheet_reads_them() {
        assert_eq!(number(1000.0), "1000");
        assert_eq!(number(0.5), "0.5");
        let t = Utc
            .with_ymd_and_hms(2026, 10, 3, 0, 12, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(iso_china(t), "2026-10-03T08:12:00+08:00");
        assert_eq!(
            COLUMNS[EVENT_TIME_COLUMN].header,
            "发生时间(北京时间) Event time (UTC+8)"
        );
    }
}
