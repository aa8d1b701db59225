//! The words of the counterfeit-scan alerts, as stored.

use crate::region;
use crate::rules::scans::ScanSignal;

/// A division's full name, or "unknown region".
fn region_name(code: Option<&str>) -> String {
    code.and_then(region::full_name)
        .unwrap_or_else(|| "未知地区".to_owned())
}

/// What an alert on the label printed with `code` says.
pub fn message(signal: &ScanSignal, code: &str) -> String {
    match signal {
        ScanSignal::NeverMinted => {
            format!("追溯码 {code} 签名有效但从未发行：签名密钥可能泄露，或有超量印刷")
        }
        ScanSignal::NotActivated => {
            format!("追溯码 {code} 尚未绑定批次就被消费者扫码（可能是超量印刷或漏绑）")
        }
        ScanSignal::Void => format!("已作废的追溯码 {code} 被消费者扫码"),
        ScanSignal::ManyDevices {
            devices,
            scans,
            max,
        } => format!(
            "追溯码 {code} 已被 {devices} 台不同设备扫码 {scans} 次（上限 {max} 台），标签可能被复制"
        ),
        ScanSignal::ImpossibleTravel {
            hours,
            from_division,
            to_division,
            km,
        } => format!(
            "追溯码 {code} 在 {hours:.1} 小时内先后于{}和{}被扫码（相距约 {km:.0} 公里），标签可能被复制",
            region_name(from_division.as_deref()),
            region_name(Some(to_division)),
        ),
        ScanSignal::OutsideArea {
            division,
            located: false,
        } => format!(
            "追溯码 {code} 在产品销售区域以外（{}）被扫码，可能是窜货或标签被复制",
            region_name(Some(division))
        ),
        ScanSignal::OutsideArea {
            division,
            located: true,
        } => format!(
            "追溯码 {code} 在产品销售区域以外（{}，手机定位）被扫码，可能是窜货或标签被复制",
            region_name(Some(division))
        ),
        ScanSignal::ForgeryAttempts { day, division } => format!(
            "{day}：{} 出现签名无效的伪造标签扫码（首个追溯码 {code}）；按地区的次数见 /api/v1/scans/regions",
            region_name(Some(division.as_str()).filter(|c| !c.is_empty()))
        ),
    }
}
