//! Products, with their brand and certifications (三品一标).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::text_enum;
use super::text::{self, Lines};
use super::Certification;
use crate::error::{CoreError, CoreResult};
use crate::{OrgId, ProductId};

/// A product an organisation sells.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    pub id: ProductId,
    pub org_id: OrgId,
    pub name: String,
    /// e.g. 水果 / 柑橘类.
    pub category: String,
    pub brand: Option<String>,
    pub certifications: Vec<Certification>,
    /// GS1 GTIN-13/14, where the product has one.
    pub gtin: Option<String>,
    /// What its printed labels show under the product name, in this order.
    pub label_fields: Vec<LabelField>,
    /// Where it is meant to be sold: division codes or their 2- or 4-digit prefixes; empty: anywhere.
    /// Scans elsewhere open an alert for the producer and regulators.
    pub distribution_area: Vec<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new product of the caller's organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub name: String,
    pub category: String,
    pub brand: Option<String>,
    #[serde(default)]
    pub certifications: Vec<Certification>,
    pub gtin: Option<String>,
    /// What its labels show under the product name; brand, certifications and producer by default.
    #[serde(default = "LabelField::default_list")]
    pub label_fields: Vec<LabelField>,
    /// Where it is meant to be sold: division codes (6 digits) or their province (2) or city (4) prefix,
    /// e.g. `["53", "4401"]`; empty (the default) means anywhere.
    #[serde(default)]
    pub distribution_area: Vec<String>,
}

text_enum!(
    /// A line a product's label may show under the product name.
    LabelField {
        /// 品牌：…
        Brand = "brand",
        /// The certification marks (三品一标), e.g. 绿色食品 · 地理标志.
        Certifications = "certifications",
        /// The organisation that makes it.
        Producer = "producer",
        /// 产地：the organisation's address.
        Origin = "origin",
        /// 品类：…
        Category = "category",
        /// The GTIN.
        Gtin = "gtin",
    }
);

impl LabelField {
    /// What a label shows unless the product says otherwise.
    pub const DEFAULT: [LabelField; 3] = [
        LabelField::Brand,
        LabelField::Certifications,
        LabelField::Producer,
    ];

    fn default_list() -> Vec<LabelField> {
        Self::DEFAULT.to_vec()
    }
}

impl NewProduct {
    /// Checks names and the GTIN's check digit.
    pub fn validate(&self) -> CoreResult<()> {
        text::required("name", &self.name, text::NAME_CHARS, Lines::One)?;
        text::required("category", &self.category, 100, Lines::One)?;
        text::optional("brand", self.brand.as_deref(), 100, Lines::One)?;
        if self.label_fields.len() > 4 {
            return Err(CoreError::invalid(
                "too_many_label_fields",
                "a label has room for at most 4 lines under the product name",
            ));
        }
        if self.distribution_area.len() > 100 {
            return Err(CoreError::invalid(
                "too_many_areas",
                "a distribution area lists at most 100 regions",
            ));
        }
        if let Some(bad) = self.distribution_area.iter().find(|a| {
            ![2, 4, 6].contains(&a.len())
                || !a.bytes().all(|b| b.is_ascii_digit())
                || a.starts_with("00")
        }) {
            return Err(CoreError::invalid(
                "invalid_division_code",
                format!("{bad:?} is not a division code or its 2- or 4-digit prefix"),
            ));
        }
        if let Some(gtin) = &self.gtin {
            if !gtin_is_valid(gtin) {
                return Err(CoreError::invalid(
                    "invalid_gtin",
                    format!("{gtin:?} is not a valid GTIN-8/12/13/14"),
                ));
            }
        }
        Ok(())
    }
}

/// GS1 mod-10 check digit over a GTIN-8, -12, -13 or -14.
pub fn gtin_is_valid(gtin: &str) -> bool {
    if ![8, 12, 13, 14].contains(&gtin.len()) || !gtin.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = gtin.bytes().map(|b| u32::from(b - b'0')).collect();
    let (body, check) = digits.split_at(digits.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10 == check[0]
}

#[cfg(test)]
mod tests {
    #[test]
    fn gtin_check_digit() {
        assert!(super::gtin_is_valid("6901234567892"));
        assert!(!super::gtin_is_valid("6901234567893"));
        assert!(!super::gtin_is_valid("69012345"));
    }
}
