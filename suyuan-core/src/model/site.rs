//! Sites: plots, greenhouses, storage rooms, cold stores, packing lines, vehicles.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::org::validate_division_code;
use super::text::{self, Lines};
use super::SiteKind;
use crate::error::{CoreError, CoreResult};
use crate::{OrgId, SiteId};

/// A site.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Site {
    pub id: SiteId,
    pub org_id: OrgId,
    pub name: String,
    pub kind: SiteKind,
    pub division_code: String,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Area in 亩 (mu) for plots and greenhouses.
    pub area_mu: Option<f64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new site of the caller's organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    pub name: String,
    pub kind: SiteKind,
    pub division_code: String,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub area_mu: Option<f64>,
}

/// The largest area of one site in 亩: 10 million 亩 is larger than a county.
pub const MAX_AREA_MU: f64 = 1e7;

impl NewSite {
    /// Checks the name, the region code and that a location is a real place.
    pub fn validate(&self) -> CoreResult<()> {
        text::required("name", &self.name, text::NAME_CHARS, Lines::One)?;
        validate_division_code(&self.division_code)?;
        text::optional("address", self.address.as_deref(), 300, Lines::One)?;
        match (self.latitude, self.longitude) {
            (None, None) => {}
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {}
            _ => {
                return Err(CoreError::invalid(
                    "invalid_location",
                    "latitude and longitude must be given together, within ±90 and ±180",
                ))
            }
        }
        if let Some(a) = self.area_mu {
            if !(a.is_finite() && a > 0.0 && a <= MAX_AREA_MU) {
                return Err(CoreError::invalid(
                    "invalid_area",
                    format!("area_mu must be a positive number of at most {MAX_AREA_MU}"),
                ));
            }
        }
        Ok(())
    }
}
