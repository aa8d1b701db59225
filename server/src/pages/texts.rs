//! The words of the consumer pages, in Chinese (the default) and English.
//!
//! Kept apart from the templates so that the template holds only structure, and so that a missing
//! translation is a compile error (every field must be filled for both languages).

use suyuan_core::model::{Certification, RecordKind};

use super::Lang;

/// Every fixed text of the scan, kiosk and lookup pages.
#[derive(Debug)]
pub struct Texts {
    pub html_lang: &'static str,
    pub switch_label: &'static str,
    pub switch_to: &'static str,
    pub site_name: &'static str,
    pub title: &'static str,
    pub short_code: &'static str,
    pub claimed_code: &'static str,
    pub product: &'static str,
    pub lot: &'static str,
    pub brand: &'static str,
    pub certifications: &'static str,
    pub producer: &'static str,
    pub origin: &'static str,
    pub grower: &'static str,
    pub contact: &'static str,
    pub farming: &'static str,
    pub inspections: &'static str,
    pub photos: &'static str,
    pub temperatures: &'static str,
    pub journey: &'static str,
    pub corrected: &'static str,
    pub from_lot: &'static str,
    pub pass: &'static str,
    pub fail: &'static str,
    pub limit: &'static str,
    pub report: &'static str,
    pub rapid_test: &'static str,
    pub lab_test: &'static str,
    pub phi: &'static str,
    pub phi_respected: &'static str,
    pub phi_violated: &'static str,
    pub phi_not_harvested: &'static str,
    pub days: &'static str,
    pub lookup_heading: &'static str,
    pub lookup_hint: &'static str,
    pub lookup_button: &'static str,
    pub share_location: &'static str,
    pub location_thanks: &'static str,
    pub scan_count: &'static str,
    pub first_scan_now: &'static str,
    pub kiosk_title: &'static str,
    pub kiosk_hint: &'static str,
    pub kiosk_clear: &'static str,
    pub kiosk_back: &'static str,
    pub kiosk_reset_note: &'static str,
    pub not_individual: &'static str,
    pub temp_range: &'static str,
    pub no_story: &'static str,
}

/// Chinese.
pub const ZH: Texts = Texts {
    html_lang: "zh-CN",
    switch_label: "English",
    switch_to: "en",
    site_name: "溯源 · 农产品质量安全追溯",
    title: "追溯查询",
    short_code: "追溯码",
    claimed_code: "冒用的追溯码",
    product: "产品",
    lot: "批次",
    brand: "品牌",
    certifications: "认证",
    producer: "生产者",
    origin: "产地",
    grower: "种植者",
    contact: "联系电话",
    farming: "种植记录",
    inspections: "检测结果",
    photos: "基地实景",
    temperatures: "冷库温度",
    journey: "流通过程",
    corrected: "已更正",
    from_lot: "来自批次",
    pass: "合格",
    fail: "不合格",
    limit: "限量",
    report: "报告编号",
    rapid_test: "农残速测",
    lab_test: "实验室检测",
    phi: "安全间隔期",
    phi_respected: "已遵守",
    phi_violated: "未遵守",
    phi_not_harvested: "尚未采收",
    days: "天",
    lookup_heading: "查询追溯码",
    lookup_hint: "输入标签二维码下方的13位追溯码",
    lookup_button: "查询",
    share_location: "共享大致位置（约10公里），帮助识别假冒标签",
    location_thanks: "谢谢，位置已记录（仅保留到约10公里）。",
    scan_count: "查询次数",
    first_scan_now: "这是此标签的首次查询。",
    kiosk_title: "追溯查询机",
    kiosk_hint: "请输入包装标签二维码下方的13位追溯码",
    kiosk_clear: "清除",
    kiosk_back: "返回",
    kiosk_reset_note: "一分钟无操作将自动返回",
    not_individual: "按商品条码和批号查询：显示该批次的信息，但不能验证单个包装标签的真伪。扫描包装上的溯源二维码可验证真伪。",
    temp_range: "温度范围",
    no_story: "暂无追溯记录。",
};

/// English.
pub const EN: Texts = Texts {
    html_lang: "en",
    switch_label: "中文",
    switch_to: "zh",
    site_name: "Suyuan · produce traceability",
    title: "Trace lookup",
    short_code: "Short code",
    claimed_code: "Code it claims",
    product: "Product",
    lot: "Lot",
    brand: "Brand",
    certifications: "Certified",
    producer: "Producer",
    origin: "Origin",
    grower: "Grower",
    contact: "Phone",
    farming: "Farming record",
    inspections: "Inspections",
    photos: "Photos from the plot",
    temperatures: "Cold-store temperature",
    journey: "Journey",
    corrected: "corrected",
    from_lot: "from lot",
    pass: "pass",
    fail: "fail",
    limit: "limit",
    report: "Report",
    rapid_test: "Pesticide-residue rapid test",
    lab_test: "Laboratory test",
    phi: "Pre-harvest interval",
    phi_respected: "respected",
    phi_violated: "NOT respected",
    phi_not_harvested: "not yet harvested",
    days: "days",
    lookup_heading: "Look up a code",
    lookup_hint: "Type the 13-digit code printed under the QR code",
    lookup_button: "Look up",
    share_location: "Share your approximate location (about 10 km) to help catch fake labels",
    location_thanks: "Thank you; the location was recorded (to about 10 km only).",
    scan_count: "Lookups",
    first_scan_now: "This is the first lookup of this label.",
    kiosk_title: "Trace lookup kiosk",
    kiosk_hint: "Type the 13-digit code printed under the QR code on the package",
    kiosk_clear: "Clear",
    kiosk_back: "Back",
    kiosk_reset_note: "Returns to the start after one minute without input",
    not_individual: "Looked up by product barcode and lot: this shows the batch, but cannot confirm that an individual package's label is genuine. Scan the trace QR code on the package to check it.",
    temp_range: "Range",
    no_story: "No records yet.",
};

/// The texts of a language.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// The name of a record kind.
pub fn record_kind(kind: RecordKind, lang: Lang) -> &'static str {
    let (zh, en) = match kind {
        RecordKind::Sowing => ("播种/定植", "Sowing / planting"),
        RecordKind::Fertilising => ("施肥", "Fertilising"),
        RecordKind::Spraying => ("施药", "Spraying"),
        RecordKind::Irrigation => ("灌溉", "Irrigation"),
        RecordKind::Harvest => ("采收", "Harvest"),
        RecordKind::Processing => ("加工", "Processing"),
        RecordKind::Packing => ("包装", "Packing"),
        RecordKind::Inspection => ("检测", "Inspection"),
        RecordKind::Shipping => ("发货", "Shipped"),
        RecordKind::Receiving => ("收货", "Received"),
        RecordKind::Note => ("备注", "Note"),
        RecordKind::Recall => ("召回", "Recall"),
        RecordKind::Correction => ("更正", "Correction"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// The name of a certification mark (三品一标).
pub fn certification(c: Certification, lang: Lang) -> &'static str {
    let (zh, en) = match c {
        Certification::PollutionFree => ("无公害农产品", "Pollution-free"),
        Certification::GreenFood => ("绿色食品", "Green Food"),
        Certification::Organic => ("有机产品", "Organic"),
        Certification::GeographicalIndication => ("农产品地理标志", "Geographical Indication"),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}
