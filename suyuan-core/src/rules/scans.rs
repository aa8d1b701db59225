//! Counterfeit and misuse signals from consumers' scans of a label.
//!
//! The scan log (`store::scans`) loads each label's state ([`LabelState`]) once per batch of scans, feeds
//! the scans and shared locations to [`on_scan`] and [`on_location`] in order, and writes the state and
//! the alerts these return. Each rule opens its alert once per label ([`LabelState::alerted`]), so a copied
//! label scanned ten thousand times gives one alert, not ten thousand; forgery attempts, which name no
//! genuine label, open one alert per region and day ([`forgery_attempts`]). The words of the alerts are in
//! [`crate::texts::scans`].

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::model::{AlertKind, LocatedScan, NewScan, ScanEvent, ScanRules, ScanVerdict, Suspicion};
use crate::region;
use crate::texts;
use crate::time::{self, Millis};
use crate::{BatchId, OrgId};

/// What the scan log keeps about one genuine label (its `label_scan_stats` row) while scans are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelState {
    pub scans: i64,
    /// Distinct clients.
    pub devices: i64,
    pub first_at: Millis,
    pub first_division: Option<String>,
    pub last_at: Millis,
    pub last_division: Option<String>,
    /// Where the last scan was, for the journey to the next.
    pub last_point: Option<(f64, f64)>,
    /// The first reason the label looked copied.
    pub suspicion: Option<String>,
    /// The alert kinds already opened for this label (by code).
    pub alerted: Vec<String>,
    /// Changed since loaded (to be written).
    pub changed: bool,
}

impl LabelState {
    /// A label before its first scan, which comes at `at` from `division`.
    pub fn first(at: DateTime<Utc>, division: Option<String>) -> Self {
        let at = at.timestamp_millis();
        LabelState {
            scans: 0,
            devices: 0,
            first_at: at,
            first_division: division,
            last_at: at,
            last_division: None,
            last_point: None,
            suspicion: None,
            alerted: Vec::new(),
            changed: true,
        }
    }

    /// Marks the label suspicious (the first reason stays) and reports `alert` unless its kind was
    /// reported for this label before.
    fn raise(&mut self, alert: ScanAlert, suspicion: Option<Suspicion>, out: &mut Vec<ScanAlert>) {
        if let Some(s) = suspicion {
            self.suspicion.get_or_insert_with(|| s.as_str().to_owned());
        }
        let kind = alert.kind().as_str();
        if self.alerted.iter().any(|k| k == kind) {
            return;
        }
        self.alerted.push(kind.to_owned());
        out.push(alert);
    }
}

/// What a counterfeit rule saw, with the facts its message is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanSignal {
    /// A validly signed code that was never minted.
    NeverMinted,
    /// A minted label scanned before it was bound to a batch.
    NotActivated,
    /// A voided label scanned.
    Void,
    /// Scanned by more distinct devices than allowed.
    ManyDevices { devices: i64, scans: i64, max: u32 },
    /// Two scans too far apart for the time between them.
    ImpossibleTravel {
        hours: f64,
        from_division: Option<String>,
        to_division: String,
        km: f64,
    },
    /// Scanned outside the product's distribution area (`located`: by the phone's location).
    OutsideArea { division: String, located: bool },
    /// The first forged code of a region and day.
    ForgeryAttempts { day: String, division: String },
}

/// An alert a scan rule raises.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanAlert {
    pub signal: ScanSignal,
    /// The short code as printed (`?` when unknown).
    pub code: String,
    /// The organisation told: the label's owner, none for the platform's own matters.
    pub org: Option<OrgId>,
    pub batch: Option<BatchId>,
}

impl ScanAlert {
    pub fn kind(&self) -> AlertKind {
        match self.signal {
            ScanSignal::NeverMinted => AlertKind::LabelNeverMinted,
            ScanSignal::NotActivated => AlertKind::LabelNotActivated,
            ScanSignal::Void => AlertKind::VoidLabelScanned,
            ScanSignal::ManyDevices { .. } => AlertKind::LabelManyDevices,
            ScanSignal::ImpossibleTravel { .. } => AlertKind::LabelImpossibleTravel,
            ScanSignal::OutsideArea { .. } => AlertKind::LabelOutsideArea,
            ScanSignal::ForgeryAttempts { .. } => AlertKind::ForgeryAttempts,
        }
    }

    /// What the alert says, as stored.
    pub fn message(&self) -> String {
        texts::scans::message(&self.signal, &self.code)
    }
}

/// Whether a scan counts towards its label's statistics: genuine signatures only (anyone can type a
/// forged code; it must not make a genuine label look copied).
pub fn tracks_label(scan: &NewScan) -> bool {
    !matches!(
        scan.verdict,
        ScanVerdict::Counterfeit
            | ScanVerdict::UnknownKey
            | ScanVerdict::Malformed
            | ScanVerdict::Batch
    )
}

fn short_code(code: Option<&str>) -> String {
    code.unwrap_or("?").to_owned()
}

/// One scan of a genuine label (see [`tracks_label`]): counts it (a device the label has not met before
/// when `new_device`), applies the rules against the label's state before this scan, then moves the state
/// to this scan. `area` is the product's distribution area (empty or none: anywhere).
pub fn on_scan(
    scan: &NewScan,
    new_device: bool,
    state: &mut LabelState,
    area: Option<&[String]>,
    rules: &ScanRules,
    out: &mut Vec<ScanAlert>,
) {
    state.scans += 1;
    if new_device {
        state.devices += 1;
    }
    state.changed = true;
    let alert = |signal: ScanSignal| ScanAlert {
        // A leaked key is the platform's matter: for regulators, not the label's owner.
        org: match signal {
            ScanSignal::NeverMinted => None,
            _ => scan.org_id,
        },
        signal,
        code: short_code(scan.short_code.as_deref()),
        batch: scan.batch_id,
    };
    match scan.verdict {
        ScanVerdict::NotMinted => state.raise(alert(ScanSignal::NeverMinted), None, out),
        ScanVerdict::NotActivated => state.raise(alert(ScanSignal::NotActivated), None, out),
        ScanVerdict::Void => state.raise(alert(ScanSignal::Void), None, out),
        _ => {}
    }
    if state.devices > i64::from(rules.max_devices) {
        let signal = ScanSignal::ManyDevices {
            devices: state.devices,
            scans: state.scans,
            max: rules.max_devices,
        };
        state.raise(alert(signal), Some(Suspicion::ManyDevices), out);
    }
    if let (Some(region), Some(prev)) = (&scan.region, state.last_point) {
        let km = region::distance_km(prev, (region.latitude, region.longitude));
        let hours = (scan.scanned_at.timestamp_millis() - state.last_at) as f64 / 3_600_000.0;
        if km > rules.min_travel_km && km > rules.max_speed_kmh * hours.max(0.0) {
            let signal = ScanSignal::ImpossibleTravel {
                hours: hours.max(0.0),
                from_division: state.last_division.clone(),
                to_division: region.division_code.clone(),
                km,
            };
            state.raise(alert(signal), Some(Suspicion::ImpossibleTravel), out);
        }
    }
    if let (Some(region), Some(area)) = (&scan.region, area.filter(|a| !a.is_empty())) {
        if !region::within(&region.division_code, area) {
            let signal = ScanSignal::OutsideArea {
                division: region.division_code.clone(),
                located: false,
            };
            state.raise(alert(signal), Some(Suspicion::OutsideArea), out);
        }
    }
    state.last_at = scan.scanned_at.timestamp_millis();
    if let Some(r) = &scan.region {
        state.last_division = Some(r.division_code.clone());
        state.last_point = Some((r.latitude, r.longitude));
    }
}

/// A location shared for a scan of the label: it replaces what the address suggested, so the area is
/// checked again (the journey is checked from this point at the next scan, not between the address and
/// the phone).
pub fn on_location(
    fix: &LocatedScan,
    state: &mut LabelState,
    area: Option<&[String]>,
    out: &mut Vec<ScanAlert>,
) {
    if let Some(area) = area.filter(|a| !a.is_empty()) {
        if !region::within(&fix.region.division_code, area) {
            let alert = ScanAlert {
                signal: ScanSignal::OutsideArea {
                    division: fix.region.division_code.clone(),
                    located: true,
                },
                code: short_code(fix.short_code.as_deref()),
                org: fix.org_id,
                batch: fix.batch_id,
            };
            state.raise(alert, Some(Suspicion::OutsideArea), out);
        }
    }
    if state.first_division.is_none() && state.scans <= 1 {
        state.first_division = Some(fix.region.division_code.clone());
    }
    state.last_division = Some(fix.region.division_code.clone());
    state.last_point = Some((fix.region.latitude, fix.region.longitude));
    state.changed = true;
}

/// The (China day, division) a scan is counted under in the regional counts (`""`: region unknown).
pub fn region_day(scan: &NewScan) -> (String, String) {
    (
        time::china_day(scan.scanned_at),
        scan.region
            .as_ref()
            .map(|r| r.division_code.clone())
            .unwrap_or_default(),
    )
}

/// One forgery alert per region and day: for the first counterfeit scan of each region-day in `events`
/// that had none before (`first_forgeries`, from the regional counts).
pub fn forgery_attempts(
    events: &[ScanEvent],
    first_forgeries: &HashSet<(String, String)>,
) -> Vec<ScanAlert> {
    let mut alerted: HashSet<(String, String)> = HashSet::new();
    let mut out = Vec::new();
    for event in events {
        let ScanEvent::Scan(scan) = event else {
            continue;
        };
        if scan.verdict != ScanVerdict::Counterfeit {
            continue;
        }
        let key = region_day(scan);
        if !first_forgeries.contains(&key) || !alerted.insert(key.clone()) {
            continue;
        }
        out.push(ScanAlert {
            signal: ScanSignal::ForgeryAttempts {
                day: key.0,
                division: key.1,
            },
            code: short_code(scan.short_code.as_deref()),
            org: None,
            batch: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::model::{LabelRef, RegionSource, ScanMethod, ScanRegion};

    const HUANING: (&str, f64, f64) = ("530424", 24.19, 102.93);
    const BEIJING: (&str, f64, f64) = ("110101", 39.93, 116.42);

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(minutes)
    }

    fn place((code, lat, lon): (&str, f64, f64)) -> ScanRegion {
        ScanRegion {
            division_code: code.into(),
            source: RegionSource::Ip,
            latitude: lat,
            longitude: lon,
        }
    }

    fn scan(verdict: ScanVerdict, minutes: i64, from: (&str, f64, f64)) -> NewScan {
        NewScan {
            scanned_at: at(minutes),
            method: ScanMethod::Qr,
            verdict,
            label: Some(LabelRef {
                key_id: 1,
                sequence: 7,
            }),
            short_code: Some("A1B2C3".into()),
            batch_id: Some(BatchId(3)),
            org_id: Some(OrgId(2)),
            product_id: None,
            region: Some(place(from)),
            client_hash: "c1".into(),
        }
    }

    /// Applies scans in order, each from a new device when `new_devices`; the kinds raised.
    fn run(scans: &[NewScan], new_devices: bool, area: &[String]) -> (LabelState, Vec<AlertKind>) {
        let rules = ScanRules::default();
        let mut state = LabelState::first(scans[0].scanned_at, None);
        let mut out = Vec::new();
        for s in scans {
            on_scan(s, new_devices, &mut state, Some(area), &rules, &mut out);
        }
        (state, out.iter().map(ScanAlert::kind).collect())
    }

    #[test]
    fn a_genuine_active_label_scanned_a_few_times_at_home_raises_nothing() {
        let scans: Vec<NewScan> = (0..5)
            .map(|i| scan(ScanVerdict::Active, i * 60, HUANING))
            .collect();
        let (state, kinds) = run(&scans, true, &["53".to_owned()]);
        assert!(kinds.is_empty(), "{kinds:?}");
        assert_eq!((state.scans, state.devices, state.suspicion), (5, 5, None));
    }

    #[test]
    fn labels_never_minted_not_activated_or_void_raise_once_each() {
        for (verdict, kind, org) in [
            (ScanVerdict::NotMinted, AlertKind::LabelNeverMinted, None),
            (
                ScanVerdict::NotActivated,
                AlertKind::LabelNotActivated,
                Some(OrgId(2)),
            ),
            (
                ScanVerdict::Void,
                AlertKind::VoidLabelScanned,
                Some(OrgId(2)),
            ),
        ] {
            let scans = [scan(verdict, 0, HUANING), scan(verdict, 10, HUANING)];
            let rules = ScanRules::default();
            let mut state = LabelState::first(at(0), None);
            let mut out = Vec::new();
            for s in &scans {
                on_scan(s, false, &mut state, None, &rules, &mut out);
            }
            assert_eq!(out.iter().map(ScanAlert::kind).collect::<Vec<_>>(), [kind]);
            assert_eq!(out[0].org, org);
        }
        assert_eq!(
            ScanAlert {
                signal: ScanSignal::NeverMinted,
                code: "A1B2C3".into(),
                org: None,
                batch: None,
            }
            .message(),
            "追溯码 A1B2C3 签名有效但从未发行：签名密钥可能泄露，或有超量印刷"
        );
    }

    #[test]
    fn more_devices_than_allowed_marks_the_label_copied() {
        let scans: Vec<NewScan> = (0..6)
            .map(|i| scan(ScanVerdict::Active, i, HUANING))
            .collect();
        let (state, kinds) = run(&scans, true, &[]);
        assert_eq!(kinds, [AlertKind::LabelManyDevices]);
        assert_eq!(state.suspicion.as_deref(), Some("many_devices"));
        // The same device again and again is one buyer.
        let (_, kinds) = run(&scans, false, &[]);
        assert!(kinds.is_empty());
    }

    #[test]
    fn two_scans_too_far_apart_for_the_time_between_are_impossible_travel() {
        let scans = [
            scan(ScanVerdict::Active, 0, HUANING),
            scan(ScanVerdict::Active, 30, BEIJING),
        ];
        let (state, kinds) = run(&scans, true, &[]);
        assert_eq!(kinds, [AlertKind::LabelImpossibleTravel]);
        assert_eq!(state.suspicion.as_deref(), Some("impossible_travel"));
        // A day later the same journey is a flight.
        let scans = [
            scan(ScanVerdict::Active, 0, HUANING),
            scan(ScanVerdict::Active, 24 * 60, BEIJING),
        ];
        assert!(run(&scans, true, &[]).1.is_empty());
    }

    #[test]
    fn a_scan_or_a_location_outside_the_distribution_area_is_reported() {
        let yunnan = ["53".to_owned()];
        let (_, kinds) = run(&[scan(ScanVerdict::Active, 0, BEIJING)], true, &yunnan);
        assert_eq!(kinds, [AlertKind::LabelOutsideArea]);
        assert!(run(&[scan(ScanVerdict::Active, 0, HUANING)], true, &yunnan)
            .1
            .is_empty());

        let fix = |from| LocatedScan {
            label: LabelRef {
                key_id: 1,
                sequence: 7,
            },
            short_code: Some("A1B2C3".into()),
            client_hash: "c1".into(),
            region: ScanRegion {
                source: RegionSource::Location,
                ..place(from)
            },
            at: at(1),
            batch_id: None,
            org_id: Some(OrgId(2)),
            product_id: None,
        };
        let mut state = LabelState::first(at(0), None);
        let mut out = Vec::new();
        on_location(&fix(HUANING), &mut state, Some(&yunnan), &mut out);
        assert!(out.is_empty());
        on_location(&fix(BEIJING), &mut state, Some(&yunnan), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].message(),
            "追溯码 A1B2C3 在产品销售区域以外（北京市东城区，手机定位）被扫码，可能是窜货或标签被复制"
        );
        assert_eq!(state.last_division.as_deref(), Some("110101"));
    }

    #[test]
    fn forgery_attempts_open_one_alert_per_new_region_and_day() {
        let events: Vec<ScanEvent> = [
            scan(ScanVerdict::Counterfeit, 0, HUANING),
            scan(ScanVerdict::Counterfeit, 5, HUANING),
            scan(ScanVerdict::Active, 6, BEIJING),
            scan(ScanVerdict::Counterfeit, 7, BEIJING),
        ]
        .into_iter()
        .map(ScanEvent::Scan)
        .collect();
        let day = time::china_day(at(0));
        let first: HashSet<(String, String)> = [(day.clone(), "530424".to_owned())].into();
        let alerts = forgery_attempts(&events, &first);
        assert_eq!(alerts.len(), 1, "Beijing had forgeries that day before");
        assert_eq!(alerts[0].kind(), AlertKind::ForgeryAttempts);
        assert!(alerts[0]
            .message()
            .starts_with(&format!("{day}：云南省玉溪市华宁县")));
        assert!(forgery_attempts(&events, &HashSet::new()).is_empty());
    }
}
