//! Where a label was scanned, coarsely: counterfeit detection compares the regions of two scans of one label
//! (impossible travel) and a scan's region with a product's distribution area, and the public page says
//! where a label was first scanned ("首次扫码于 11月3日 在 云南省昆明市").
//!
//! A region is a GB/T 2260 division code (6 digits: province, city, county), named and located by a
//! built-in gazetteer of China's divisions with a point for each ([`division`], [`full_name`],
//! [`short_name`], [`nearest`]), embedded from `data/divisions.csv` (see `data/README.md` for its origin
//! and licence) and parsed once: it is immutable data shipped with the code, not configuration. A scan's
//! region comes from one of two places:
//! - the phone's location, when the consumer shares it: the nearest county ([`nearest`]); the more
//!   precise of the two, it replaces the other;
//! - the client's address, in an IP-to-region database ([`IpRegions`], `ip.rs`): ip2region's, built in
//!   (read by `xdb.rs`, its place names mapped to codes by [`division_by_names`]), or a file the operator
//!   installs instead; loading fails on any bad line or entry, so a broken file is noticed at start.
//!
//! A consumer's precise location is never stored: [`coarse_location`] rounds it to about 10 km first.

mod ip;
mod xdb;

pub use ip::{IpRegions, IpRegionsError, IpRegionsOrigin};

use std::collections::HashSet;
use std::sync::OnceLock;

/// The gazetteer, `code,name,longitude,latitude`, sorted by code.
const DIVISIONS_CSV: &str = include_str!("../../data/divisions.csv");

/// Mean Earth radius used by [`distance_km`].
const EARTH_RADIUS_KM: f64 = 6371.0;

/// Beyond this distance from every division, [`nearest`] says the point is not in China.
const NEAREST_MAX_KM: f64 = 300.0;

/// Rows that group divisions without naming a place ("districts under the city", "counties directly under
/// the province"); they are skipped when names are joined.
const PLACEHOLDER_NAMES: [&str; 4] = [
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
];

/// Province prefixes of the municipalities (北京, 天津, 上海, 重庆), whose districts are shown by the
/// municipality's name.
const MUNICIPALITIES: [&str; 4] = ["11", "12", "31", "50"];

// ---------------------------------------------------------------------------------------------------------
// Built-in gazetteer
// ---------------------------------------------------------------------------------------------------------

/// One administrative division of China: a province (`530000`), a prefecture-level city (`530100`) or a
/// county-level division (`530102`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Division {
    /// The 6-digit GB/T 2260 code.
    pub code: &'static str,
    /// The division's own name, e.g. `五华区`; see [`full_name`] for the name with its ancestors.
    pub name: &'static str,
    /// Longitude of a representative point (the seat); `None` for the few rows without one (placeholders
    /// such as `市辖区` and some retired codes). Present exactly when `latitude` is.
    pub longitude: Option<f64>,
    /// Latitude of the same point.
    pub latitude: Option<f64>,
}

impl Division {
    /// The 6-digit division code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The representative point as `(latitude, longitude)`, the order [`distance_km`] takes.
    pub fn point(&self) -> Option<(f64, f64)> {
        Some((self.latitude?, self.longitude?))
    }

    /// Whether the row is a grouping such as `市辖区` rather than a named place.
    fn is_placeholder(&self) -> bool {
        PLACEHOLDER_NAMES.contains(&self.name)
    }
}

/// The parsed gazetteer and the divisions [`nearest`] chooses from.
struct Gazetteer {
    /// Every division, sorted by code.
    divisions: Vec<Division>,
    /// Indices of the located, named divisions that have no located, named division under them: counties,
    /// plus the cities and regions without counties (东莞市, 中山市, 香港特别行政区, ...), so that a scan
    /// there is not attributed to a neighbour.
    leaves: Vec<usize>,
}

impl Gazetteer {
    fn new(divisions: Vec<Division>) -> Self {
        let located = |d: &&Division| d.point().is_some() && !d.is_placeholder();
        // Prefixes (2 or 4 digits) that have a located division strictly below them.
        let mut parents: HashSet<&'static str> = HashSet::new();
        for d in divisions.iter().filter(located) {
            if !d.code.ends_with("00") {
                parents.insert(&d.code[..4]);
                parents.insert(&d.code[..2]);
            } else if !d.code.ends_with("0000") {
                parents.insert(&d.code[..2]);
            }
        }
        let leaves = divisions
            .iter()
            .enumerate()
            .filter(|(_, d)| located(d))
            .filter(|(_, d)| match level_prefix(d.code) {
                Some(prefix) => !parents.contains(prefix),
                None => true,
            })
            .map(|(i, _)| i)
            .collect();
        Gazetteer { divisions, leaves }
    }
}

/// The prefix a province (2 digits) or city (4 digits) code stands for; `None` for a county-level code.
fn level_prefix(code: &str) -> Option<&str> {
    if code.ends_with("0000") {
        code.get(..2)
    } else if code.ends_with("00") {
        code.get(..4)
    } else {
        None
    }
}

/// The gazetteer, parsed on first use.
fn gazetteer() -> &'static Gazetteer {
    static GAZETTEER: OnceLock<Gazetteer> = OnceLock::new();
    GAZETTEER.get_or_init(|| match parse_divisions(DIVISIONS_CSV) {
        Ok(divisions) => Gazetteer::new(divisions),
        Err(e) => {
            // Unreachable with the shipped file (a test parses it); fail soft rather than panic.
            tracing::error!(error = %e, "built-in divisions.csv is malformed; regions are unavailable");
            Gazetteer::new(Vec::new())
        }
    })
}

/// Parses the embedded gazetteer, checking the header, each row and the sort order that lookups rely on.
fn parse_divisions(text: &'static str) -> Result<Vec<Division>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "code,name,longitude,latitude")) => {}
        _ => return Err("line 1: expected header `code,name,longitude,latitude`".into()),
    }
    let mut divisions: Vec<Division> = Vec::new();
    for (i, line) in lines {
        let at = |what: &str| format!("line {}: {what}", i + 1);
        let mut fields = line.split(',');
        let (Some(code), Some(name), Some(lon), Some(lat), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(at("expected 4 fields"));
        };
        if !is_code(code) || name.is_empty() {
            return Err(at("bad code or empty name"));
        }
        let coordinate = |s: &str| -> Result<Option<f64>, String> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| at("bad coordinate"))
            }
        };
        let (longitude, latitude) = (coordinate(lon)?, coordinate(lat)?);
        if longitude.is_some() != latitude.is_some() {
            return Err(at("only one coordinate"));
        }
        if divisions.last().is_some_and(|prev| prev.code >= code) {
            return Err(at("codes not strictly increasing"));
        }
        divisions.push(Division {
            code,
            name,
            longitude,
            latitude,
        });
    }
    Ok(divisions)
}

/// Whether `s` is a 6-digit division code (not whether the division exists).
fn is_code(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The division with this 6-digit code, if the gazetteer knows it.
pub fn division(code: &str) -> Option<&'static Division> {
    if !is_code(code) {
        return None;
    }
    let divisions = &gazetteer().divisions;
    let i = divisions.binary_search_by(|d| d.code.cmp(code)).ok()?;
    divisions.get(i)
}

/// The division with this code unless it is a placeholder row such as `市辖区`.
fn named(code: &str) -> Option<&'static Division> {
    division(code).filter(|d| !d.is_placeholder())
}

/// The codes of a code's province and city (`530424` → `530000`, `530400`); `code` must satisfy
/// [`is_code`].
fn ancestors(code: &str) -> (String, String) {
    (format!("{}0000", &code[..2]), format!("{}00", &code[..4]))
}

/// The name of a division with its ancestors, as shown on the scan page: `530424` → `云南省玉溪市华宁县`,
/// `110105` → `北京市朝阳区` (a municipality is named once). A code the gazetteer does not know is named
/// by its nearest known ancestor (`530499` → `云南省玉溪市`), since divisions are created and renamed
/// after the data was taken; `None` when not even its province is known.
pub fn full_name(code: &str) -> Option<String> {
    if !is_code(code) {
        return None;
    }
    let (province_code, city_code) = ancestors(code);
    let mut name = named(&province_code)?.name.to_owned();
    if city_code != province_code {
        if let Some(city) = named(&city_code) {
            name.push_str(city.name);
        }
        if code != city_code {
            if let Some(county) = named(code) {
                name.push_str(county.name);
            }
        }
    }
    Some(name)
}

/// The city-level name to use in a sentence: the prefecture of a county (`530102` → `昆明市`), the
/// municipality for its districts (`110105` → `北京市`), a county-level city directly under its province
/// as itself (`429004` → `仙桃市`), a province as itself. `None` when the province is unknown.
pub fn short_name(code: &str) -> Option<String> {
    if !is_code(code) {
        return None;
    }
    let (province_code, city_code) = ancestors(code);
    let province = named(&province_code)?;
    if code == province_code || MUNICIPALITIES.contains(&&code[..2]) {
        return Some(province.name.to_owned());
    }
    let name = named(&city_code)
        .or_else(|| (code != city_code).then(|| named(code)).flatten())
        .unwrap_or(province);
    Some(name.name.to_owned())
}

/// Whether a point is a valid latitude / longitude in degrees.
fn valid_point(latitude: f64, longitude: f64) -> bool {
    latitude.is_finite()
        && longitude.is_finite()
        && (-90.0..=90.0).contains(&latitude)
        && (-180.0..=180.0).contains(&longitude)
}

/// The county-level division whose point is nearest to a location (for a city or region without counties
/// in the data, such as 东莞市 or 香港特别行政区, that division itself). `None` for an invalid location or
/// one more than 300 km from every division, i.e. not in China.
pub fn nearest(latitude: f64, longitude: f64) -> Option<&'static Division> {
    if !valid_point(latitude, longitude) {
        return None;
    }
    let g = gazetteer();
    g.leaves
        .iter()
        .filter_map(|&i| g.divisions.get(i))
        .filter_map(|d| Some((d, distance_km((latitude, longitude), d.point()?))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, km)| *km <= NEAREST_MAX_KM)
        .map(|(d, _)| d)
}

/// Great-circle (haversine) distance in kilometres between two `(latitude, longitude)` points in degrees,
/// on a sphere of radius 6371 km; what the impossible-travel rule divides by the time between scans.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.min(1.0).sqrt().asin()
}

/// The prefix an area code covers: `53` / `530000` a province, `5304` / `530400` a city, any other 6 digits
/// that division alone. `None` for anything else, which covers nothing.
fn area_prefix(area: &str) -> Option<&str> {
    if !area.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match area.len() {
        2 | 4 => Some(area),
        6 => level_prefix(area).or(Some(area)),
        _ => None,
    }
}

/// Suffixes that name a division's kind rather than the place (`云南省`, `内蒙古自治区`, `大理白族自治州`,
/// `锡林郭勒盟`): IP databases often leave them out (`内蒙古`, `大理`, `锡林郭勒`). Longest first.
const KIND_SUFFIXES: [&str; 7] = ["特别行政区", "自治区", "自治州", "地区", "省", "市", "盟"];

/// A name without its kind: `云南省` → `云南`, `大理白族自治州` → `大理白族`, `内蒙古` → `内蒙古`.
fn name_core(name: &str) -> &str {
    KIND_SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix).filter(|core| !core.is_empty()))
        .unwrap_or(name)
}

/// The one candidate a place name written loosely stands for: the same name, else the same name without
/// its kind (`昆明` for `昆明市`), else the only candidate whose name begins with it (`大理` for
/// `大理白族自治州`, `广西` for `广西壮族自治区`; two characters at least). `None` when nothing matches or
/// a prefix is ambiguous.
fn match_name<'a>(
    candidates: impl Iterator<Item = &'a Division> + Clone,
    name: &str,
) -> Option<&'a Division> {
    let core = name_core(name);
    if let Some(d) = candidates.clone().find(|d| d.name == name) {
        return Some(d);
    }
    if let Some(d) = candidates.clone().find(|d| name_core(d.name) == core) {
        return Some(d);
    }
    if core.chars().count() < 2 {
        return None;
    }
    let mut prefixed = candidates.filter(|d| name_core(d.name).starts_with(core));
    match (prefixed.next(), prefixed.next()) {
        (Some(d), None) => Some(d),
        _ => None,
    }
}

/// Whether a name field of an IP database says nothing (`0` in ip2region's answers).
fn is_blank(name: &str) -> bool {
    let name = name.trim();
    name.is_empty() || name == "0"
}

/// The division an IP-to-region database names by province and city, as such databases write them
/// (`云南省`/`昆明市`, `内蒙古`/`锡林郭勒`, `新疆`/`博尔塔拉`, `河南省`/`济源`): the city's division (a
/// prefecture-level city, or a county-level city directly under its province such as `济源市` 419001);
/// the province's when the city is blank (`0`) or not in the gazetteer (e.g. Taiwan's cities); for a
/// municipality (北京, 天津, 上海, 重庆) its city-level code (`110100`, named `北京市`), whatever the city
/// says. `None` when the province is blank or unknown.
pub fn division_by_names(province: &str, city: &str) -> Option<&'static Division> {
    if is_blank(province) {
        return None;
    }
    let divisions = &gazetteer().divisions;
    let province = match_name(
        divisions.iter().filter(|d| d.code.ends_with("0000")),
        province.trim(),
    )?;
    let prefix = &province.code[..2];
    if MUNICIPALITIES.contains(&prefix) {
        return division(&format!("{prefix}0100")).or(Some(province));
    }
    if is_blank(city) {
        return Some(province);
    }
    // The province's divisions are contiguous in the sorted gazetteer.
    let start = divisions.partition_point(|d| d.code < province.code);
    let end = divisions.partition_point(|d| &d.code[..2] <= prefix);
    let cities = divisions
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .filter(|d| !d.is_placeholder() && d.code != province.code)
        .filter(|d| d.code.ends_with("00") || &d.code[2..4] == "90");
    Some(match_name(cities, city.trim()).unwrap_or(province))
}

/// Whether a division lies within any of the areas of a distribution list (`["53", "4401", "330106"]`);
/// the rule for scans outside a product's distribution area. A malformed code is within nothing.
pub fn within<S: AsRef<str>>(code: &str, area: &[S]) -> bool {
    is_code(code)
        && area
            .iter()
            .filter_map(|a| area_prefix(a.as_ref()))
            .any(|prefix| code.starts_with(prefix))
}

/// A location rounded to 0.1° (about 10 km), the only precision ever stored for a consumer's scan; `None`
/// when not a valid latitude / longitude.
pub fn coarse_location(latitude: f64, longitude: f64) -> Option<(f64, f64)> {
    // `+ 0.0` turns a rounded -0.0 into 0.0.
    let round = |x: f64| (x * 10.0).round() / 10.0 + 0.0;
    valid_point(latitude, longitude).then(|| (round(latitude), round(longitude)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_gazetteer_parses_completely() {
        let divisions = parse_divisions(DIVISIONS_CSV).unwrap();
        assert_eq!(divisions.len(), 3511);
        assert_eq!(gazetteer().divisions.len(), 3511);
    }

    #[test]
    fn division_finds_a_code_and_refuses_malformed_ones() {
        let d = division("530424").unwrap();
        assert_eq!((d.code(), d.name), ("530424", "华宁县"));
        assert!(d.point().is_some());
        assert!(division("5304").is_none());
        assert!(division("53042a").is_none());
        assert!(division("990101").is_none());
    }

    #[test]
    fn full_name_joins_province_city_and_county() {
        assert_eq!(full_name("530424").unwrap(), "云南省玉溪市华宁县");
        assert_eq!(full_name("530100").unwrap(), "云南省昆明市");
        assert_eq!(full_name("530000").unwrap(), "云南省");
    }

    #[test]
    fn full_name_names_a_municipality_once() {
        assert_eq!(full_name("110105").unwrap(), "北京市朝阳区");
        assert_eq!(full_name("110100").unwrap(), "北京市");
        assert_eq!(full_name("500228").unwrap(), "重庆市梁平县");
        assert_eq!(full_name("429004").unwrap(), "湖北省仙桃市");
    }

    #[test]
    fn full_name_falls_back_to_the_nearest_known_ancestor() {
        assert_eq!(full_name("530499").unwrap(), "云南省玉溪市");
        assert_eq!(full_name("539901").unwrap(), "云南省");
        assert!(full_name("990101").is_none());
        assert!(full_name("bad").is_none());
    }

    #[test]
    fn short_name_is_the_city_level_name() {
        assert_eq!(short_name("530102").unwrap(), "昆明市");
        assert_eq!(short_name("530100").unwrap(), "昆明市");
        assert_eq!(short_name("530101").unwrap(), "昆明市");
        assert_eq!(short_name("110105").unwrap(), "北京市");
        assert_eq!(short_name("500228").unwrap(), "重庆市");
        assert_eq!(short_name("429004").unwrap(), "仙桃市");
        assert_eq!(short_name("530000").unwrap(), "云南省");
        assert!(short_name("990101").is_none());
    }

    #[test]
    fn nearest_to_kunming_is_a_county_of_kunming() {
        let d = nearest(25.04, 102.71).unwrap();
        assert!(
            d.code.starts_with("5301") && !d.code.ends_with("00"),
            "{d:?}"
        );
    }

    #[test]
    fn nearest_in_a_city_without_counties_is_that_city() {
        assert_eq!(nearest(23.02, 113.75).unwrap().code, "441900");
    }

    #[test]
    fn nearest_refuses_points_outside_china_and_invalid_points() {
        assert!(nearest(30.0, -150.0).is_none());
        assert!(nearest(0.0, 160.0).is_none());
        assert!(nearest(f64::NAN, 102.0).is_none());
        assert!(nearest(25.0, f64::INFINITY).is_none());
        assert!(nearest(95.0, 102.0).is_none());
        assert!(nearest(25.0, 190.0).is_none());
    }

    #[test]
    fn distance_kunming_beijing_is_about_2100_km() {
        let km = distance_km((25.04, 102.71), (39.90, 116.41));
        assert!((km - 2100.0).abs() < 100.0, "{km}");
        assert_eq!(distance_km((25.0, 102.0), (25.0, 102.0)), 0.0);
    }

    #[test]
    fn division_by_names_reads_every_province_as_ip_databases_write_it() {
        let provinces: Vec<&Division> = gazetteer()
            .divisions
            .iter()
            .filter(|d| d.code.ends_with("0000"))
            .collect();
        assert_eq!(provinces.len(), 34);
        for p in provinces {
            let municipality = MUNICIPALITIES.contains(&&p.code[..2]);
            let want = if municipality {
                format!("{}0100", &p.code[..2])
            } else {
                p.code.to_owned()
            };
            // The full name, the name without its kind, and the short names ip2region uses.
            let short: String = match &p.code[..2] {
                "15" => "内蒙古".into(),
                "45" => "广西".into(),
                "54" => "西藏".into(),
                "64" => "宁夏".into(),
                "65" => "新疆".into(),
                "81" => "香港".into(),
                "82" => "澳门".into(),
                _ => name_core(p.name).into(),
            };
            for name in [p.name, name_core(p.name), &short] {
                let got = division_by_names(name, "0").map(|d| d.code);
                assert_eq!(got, Some(want.as_str()), "{name}");
            }
        }
    }

    #[test]
    fn division_by_names_finds_cities_with_or_without_their_kind() {
        let code = |p: &str, c: &str| division_by_names(p, c).map(|d| d.code);
        for (province, city, want) in [
            ("云南省", "昆明市", "530100"),
            ("云南", "昆明", "530100"),
            ("云南省", "玉溪市", "530400"),
            ("云南省", "大理", "532900"),
            ("云南省", "西双版纳", "532800"),
            ("内蒙古", "锡林郭勒", "152500"),
            ("内蒙古", "兴安盟", "152200"),
            ("内蒙古", "呼和浩特市", "150100"),
            ("新疆", "博尔塔拉", "652700"),
            ("新疆", "石河子市", "659001"),
            ("西藏", "阿里地区", "542500"),
            ("黑龙江省", "大兴安岭", "232700"),
            ("河南省", "济源", "419001"),
            ("湖北省", "恩施", "422800"),
            ("湖北省", "仙桃市", "429004"),
            ("海南省", "儋州", "460400"),
            ("青海省", "海南", "632500"),
            ("吉林省", "吉林市", "220200"),
            ("吉林省", "延边", "222400"),
            ("广东省", "东莞市", "441900"),
            ("广西", "桂林", "450300"),
            ("甘肃省", "临夏市", "622900"),
        ] {
            assert_eq!(code(province, city), Some(want), "{province}|{city}");
        }
    }

    #[test]
    fn division_by_names_gives_a_municipality_its_city_level_code() {
        for (province, city, want) in [
            ("北京", "北京市", "110100"),
            ("北京市", "0", "110100"),
            ("上海", "上海", "310100"),
            ("天津", "天津市", "120100"),
            ("重庆", "重庆市", "500100"),
        ] {
            let d = division_by_names(province, city).unwrap();
            assert_eq!(d.code, want);
            assert_eq!(
                full_name(d.code).unwrap(),
                format!("{}市", name_core(province))
            );
        }
    }

    #[test]
    fn division_by_names_falls_back_to_the_province_or_to_nothing() {
        let code = |p: &str, c: &str| division_by_names(p, c).map(|d| d.code);
        assert_eq!(code("云南省", "0"), Some("530000"));
        assert_eq!(code("云南省", ""), Some("530000"));
        assert_eq!(code("云南省", "不存在市"), Some("530000"));
        assert_eq!(code("台湾省", "台北"), Some("710000"));
        assert_eq!(code("香港", "沙田"), Some("810000"));
        assert_eq!(code("0", "内网IP"), None);
        assert_eq!(code("", ""), None);
        assert_eq!(code("California", "Los Angeles"), None);
        // One character says too little to pick a city by prefix.
        assert_eq!(code("云南省", "大"), Some("530000"));
    }

    #[test]
    fn within_matches_province_city_and_county_areas() {
        assert!(within("530424", &["53"]));
        assert!(within("530424", &["530000"]));
        assert!(within("530424", &["5304"]));
        assert!(within("530424", &["530400"]));
        assert!(within("530424", &["530424"]));
        assert!(within("530424", &["11".to_owned(), "53".to_owned()]));
        assert!(!within("110105", &["53"]));
        assert!(!within("530424", &["530402"]));
        assert!(!within("530400", &["530424"]));
        assert!(!within("530424", &["5", "530", "53x", ""]));
        assert!(!within("5304", &["53"]));
        assert!(!within::<&str>("530424", &[]));
    }

    #[test]
    fn coarse_location_rounds_to_a_tenth_of_a_degree() {
        assert_eq!(coarse_location(25.04, 102.71), Some((25.0, 102.7)));
        assert_eq!(coarse_location(25.06, 102.75), Some((25.1, 102.8)));
        assert_eq!(coarse_location(-0.04, -0.04), Some((0.0, 0.0)));
        assert_eq!(coarse_location(90.0, -180.0), Some((90.0, -180.0)));
    }

    #[test]
    fn coarse_location_refuses_invalid_points() {
        assert!(coarse_location(f64::NAN, 0.0).is_none());
        assert!(coarse_location(0.0, f64::NEG_INFINITY).is_none());
        assert!(coarse_location(90.1, 0.0).is_none());
        assert!(coarse_location(0.0, -180.1).is_none());
    }
}
