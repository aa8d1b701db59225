//! The words of the sensor rules' alerts (thresholds, silent devices).

/// "冷库超温：temp_c 读数 9.1 超出 −∞–8，持续 30 分钟以上（补传数据）".
pub fn threshold_opened(
    rule_name: &str,
    metric: &str,
    value: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    duration_ms: i64,
    late: bool,
) -> String {
    let minutes = duration_ms / 60_000;
    let value = value.map(|v| v.to_string()).unwrap_or_default();
    let min = min.map_or_else(|| "−∞".to_owned(), |v| v.to_string());
    let max = max.map_or_else(|| "∞".to_owned(), |v| v.to_string());
    format!(
        "{rule_name}：{metric} 读数 {value} 超出 {min}–{max}，持续 {minutes} 分钟以上{}",
        late_note(late)
    )
}

/// "冷库断线：设备 cold-01 已 15 分钟无数据".
pub fn no_data_opened(rule_name: &str, client_id: &str, duration_ms: i64, late: bool) -> String {
    let minutes = duration_ms / 60_000;
    format!(
        "{rule_name}：设备 {client_id} 已 {minutes} 分钟无数据{}",
        late_note(late)
    )
}

/// Said of an alert raised by data that arrived late (history filled in, not a live alarm).
fn late_note(late: bool) -> &'static str {
    if late {
        "（补传数据）"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_what_is_stored() {
        assert_eq!(
            threshold_opened(
                "冷库超温",
                "temp_c",
                Some(9.1),
                None,
                Some(8.0),
                1_800_000,
                false
            ),
            "冷库超温：temp_c 读数 9.1 超出 −∞–8，持续 30 分钟以上"
        );
        assert_eq!(
            no_data_opened("冷库断线", "cold-01", 900_000, true),
            "冷库断线：设备 cold-01 已 15 分钟无数据（补传数据）"
        );
    }
}
