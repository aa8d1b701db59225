//! Organisations (企业、合作社、检测机构、监管部门 …).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::{self, Lines};
use super::OrgKind;
use crate::error::{CoreError, CoreResult};
use crate::OrgId;

/// An organisation as members and regulators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organisation {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    /// 统一社会信用代码 (18 characters); not public for individual farmers.
    pub credit_code: Option<String>,
    /// 行政区划代码 (GB/T 2260, 6 digits).
    pub division_code: String,
    /// Village / township address.
    pub address: Option<String>,
    /// The contact the organisation chooses to show consumers.
    pub public_contact: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The part of an organisation a consumer may see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicOrganisation {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    pub division_code: String,
    pub address: Option<String>,
    pub public_contact: Option<String>,
}

impl From<&Organisation> for PublicOrganisation {
    fn from(o: &Organisation) -> Self {
        PublicOrganisation {
            id: o.id,
            name: o.name.clone(),
            kind: o.kind,
            division_code: o.division_code.clone(),
            address: o.address.clone(),
            public_contact: o.public_contact.clone(),
        }
    }
}

/// A new organisation, created by an operator.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    pub name: String,
    pub kind: OrgKind,
    pub credit_code: Option<String>,
    pub division_code: String,
    pub address: Option<String>,
    pub public_contact: Option<String>,
}

impl NewOrganisation {
    /// Checks the codes' formats (the credit code's GB 32100 check character included).
    pub fn validate(&self) -> CoreResult<()> {
        text::required("name", &self.name, text::NAME_CHARS, Lines::One)?;
        validate_division_code(&self.division_code)?;
        text::optional("address", self.address.as_deref(), 300, Lines::One)?;
        text::optional(
            "public_contact",
            self.public_contact.as_deref(),
            100,
            Lines::One,
        )?;
        if let Some(code) = &self.credit_code {
            validate_credit_code(code)?;
        }
        Ok(())
    }
}

/// Rejects an empty or overlong text field, or one with control characters other than line breaks and tabs,
/// with a message naming it (see [`super::text`], which input models use directly).
pub fn non_empty(field: &str, value: &str, max_chars: usize) -> CoreResult<()> {
    text::required(field, value, max_chars, Lines::Many)
}

/// 行政区划代码: six digits, province part not zero.
pub fn validate_division_code(code: &str) -> CoreResult<()> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) && !code.starts_with("00") {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "invalid_division_code",
            format!("{code:?} is not a 6-digit administrative division code"),
        ))
    }
}

/// 统一社会信用代码: 18 characters from GB 32100's alphabet with its mod-31 check character.
pub fn validate_credit_code(code: &str) -> CoreResult<()> {
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let bad = || {
        CoreError::invalid(
            "invalid_credit_code",
            format!("{code:?} is not a valid unified social credit code"),
        )
    };
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Err(bad());
    }
    let mut values = Vec::with_capacity(18);
    for c in &chars {
        values.push(ALPHABET.find(*c).ok_or_else(bad)? as u32);
    }
    let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    if values[17] == check {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Computes the check character for the first 17 characters of a credit code (used by the demo data).
pub fn credit_code_with_check(first17: &str) -> Option<String> {
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let values: Option<Vec<u32>> = first17
        .chars()
        .map(|c| ALPHABET.find(c).map(|v| v as u32))
        .collect();
    let values = values.filter(|v| v.len() == 17)?;
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = ((31 - sum % 31) % 31) as usize;
    Some(format!("{first17}{}", ALPHABET.chars().nth(check)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_code_check_character() {
        let code = credit_code_with_check("91530424MA6K7XXX1").expect("valid prefix");
        assert!(validate_credit_code(&code).is_ok());
        let mut wrong: Vec<char> = code.chars().collect();
        wrong[17] = if wrong[17] == '0' { '1' } else { '0' };
        assert!(validate_credit_code(&wrong.into_iter().collect::<String>()).is_err());
        assert!(validate_credit_code("123").is_err());
    }

    #[test]
    fn division_codes() {
        assert!(validate_division_code("530424").is_ok());
        assert!(validate_division_code("53042").is_err());
        assert!(validate_division_code("000000").is_err());
    }
}
