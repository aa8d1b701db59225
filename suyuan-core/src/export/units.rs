//! Units as recorded (kg, 斤, 箱, …) to UN/CEFACT Recommendation 20/21 codes, which EPCIS quantities carry.
//!
//! A unit is matched after trimming and ignoring letter case. Chinese market units are converted: 斤 (jin) is
//! 0.5 kg, 两 (liang) 50 g, 担 (dan) 50 kg, 公斤 and 千克 are kilograms. Package words (箱, 盒, 袋, …) map to
//! the Recommendation 21 package codes with the `X` prefix that Recommendation 20 gives them (XBX box). A
//! unit that is none of these (e.g. 亩, an area, or a word of the farm's own) has no code: the EPCIS writer
//! then leaves the quantity out of the quantity element and writes it, as recorded, in an extension field.

/// A quantity in a UN/CEFACT unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    pub value: f64,
    /// Recommendation 20 code, e.g. `KGM`.
    pub code: &'static str,
}

/// The UN/CEFACT code of `unit` and the factor a quantity in it is multiplied by, or `None`.
pub fn uncefact(unit: &str) -> Option<(&'static str, f64)> {
    let unit = unit.trim().to_lowercase();
    Some(match unit.as_str() {
        "kg" | "kgs" | "kilogram" | "kilograms" | "公斤" | "千克" => ("KGM", 1.0),
        "g" | "gram" | "grams" | "克" => ("GRM", 1.0),
        "t" | "tonne" | "tonnes" | "ton" | "tons" | "吨" => ("TNE", 1.0),
        "斤" | "市斤" => ("KGM", 0.5),
        "两" => ("KGM", 0.05),
        "担" => ("KGM", 50.0),
        "lb" | "lbs" | "pound" | "pounds" => ("LBR", 1.0),
        "l" | "litre" | "litres" | "liter" | "liters" | "升" => ("LTR", 1.0),
        "ml" | "millilitre" | "milliliter" | "毫升" => ("MLT", 1.0),
        "m3" | "m³" | "立方米" | "方" => ("MTQ", 1.0),
        "piece" | "pieces" | "pc" | "pcs" | "ea" | "each" | "个" | "只" | "颗" | "枚" | "头"
        | "株" | "棵" | "根" => ("H87", 1.0),
        "box" | "boxes" | "箱" | "盒" | "礼盒" | "纸箱" | "泡沫箱" => ("XBX", 1.0),
        "case" | "cases" | "件" => ("XCS", 1.0),
        "bag" | "bags" | "袋" | "包" | "网袋" => ("XBG", 1.0),
        "basket" | "baskets" | "筐" | "篮" => ("XBK", 1.0),
        "crate" | "crates" | "框" => ("XCR", 1.0),
        "bottle" | "bottles" | "瓶" => ("XBO", 1.0),
        "can" | "cans" | "罐" => ("XCA", 1.0),
        "pallet" | "pallets" | "托" | "托盘" => ("XPX", 1.0),
        "dozen" | "打" => ("DZN", 1.0),
        _ => return None,
    })
}

/// `value` of `unit` as a UN/CEFACT measure (converted where the unit is a multiple of one), or `None`
/// when the unit has no code.
pub fn measure(value: f64, unit: &str) -> Option<Measure> {
    let (code, factor) = uncefact(unit)?;
    // Round off the binary noise of the conversion (0.1 × 0.5), far below any scale's resolution.
    let value = (value * factor * 1e6).round() / 1e6;
    Some(Measure { value, code })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mass_volume_and_count_units() {
        assert_eq!(uncefact("kg"), Some(("KGM", 1.0)));
        assert_eq!(uncefact(" KG "), Some(("KGM", 1.0)));
        assert_eq!(uncefact("公斤"), Some(("KGM", 1.0)));
        assert_eq!(uncefact("t"), Some(("TNE", 1.0)));
        assert_eq!(uncefact("吨"), Some(("TNE", 1.0)));
        assert_eq!(uncefact("g"), Some(("GRM", 1.0)));
        assert_eq!(uncefact("L"), Some(("LTR", 1.0)));
        assert_eq!(uncefact("pieces"), Some(("H87", 1.0)));
        assert_eq!(uncefact("个"), Some(("H87", 1.0)));
        assert_eq!(uncefact("箱"), Some(("XBX", 1.0)));
        assert_eq!(uncefact("boxes"), Some(("XBX", 1.0)));
        assert_eq!(uncefact("袋"), Some(("XBG", 1.0)));
    }

    #[test]
    fn chinese_market_units_become_kilograms() {
        assert_eq!(
            measure(100.0, "斤"),
            Some(Measure {
                value: 50.0,
                code: "KGM"
            })
        );
        assert_eq!(
            measure(3.0, "两"),
            Some(Measure {
                value: 0.15,
                code: "KGM"
            })
        );
        assert_eq!(
            measure(0.1, "斤"),
            Some(Measure {
                value: 0.05,
                code: "KGM"
            })
        );
    }

    #[test]
    fn units_without_a_code_are_said_so() {
        assert_eq!(uncefact("亩"), None);
        assert_eq!(uncefact("ml/亩"), None);
        assert_eq!(measure(3.0, "筐子"), None);
        assert_eq!(uncefact(""), None);
    }

    #[test]
    fn every_code_has_the_shape_epcis_asks() {
        for unit in [
            "kg", "g", "t", "斤", "两", "担", "lb", "l", "ml", "m3", "个", "箱", "件", "袋", "筐",
            "框", "瓶", "罐", "托", "打",
        ] {
            let (code, factor) = uncefact(unit).unwrap_or_else(|| panic!("{unit}"));
            assert!(
                (2..=3).contains(&code.len())
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                "{unit} → {code}"
            );
            assert!(factor > 0.0);
        }
    }
}
