//! The operator's IP-to-region database: address ranges mapped to division codes, loaded from a CSV file.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;

use super::is_code;

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
}

/// A range as read, with its line for error messages.
struct Pending<T> {
    start: T,
    end: T,
    code: u32,
    line: usize,
}

/// The operator's IP-to-region database: address ranges mapped to division codes, for scans that come
/// without a location. Loaded once from a CSV file of lines `start,end,code` (addresses of one family,
/// inclusive, `start <= end`; `#` comments, blank lines and a leading `start,end,code` header allowed;
/// fields are not quoted).
#[derive(Clone, Default)]
pub struct IpRegions {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    /// Distinct codes; ranges refer to them by index.
    codes: Vec<Box<str>>,
}

impl fmt::Debug for IpRegions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpRegions")
            .field("v4_ranges", &self.v4.len())
            .field("v6_ranges", &self.v6.len())
            .field("codes", &self.codes.len())
            .finish()
    }
}

impl IpRegions {
    /// Loads the file at `path`, named by that path in errors.
    pub fn open(path: &Path) -> Result<Self, IpRegionsError> {
        let file = path.display().to_string();
        let reader = std::fs::File::open(path).map_err(|error| IpRegionsError::Open {
            file: file.clone(),
            error,
        })?;
        Self::from_reader(reader, &file)
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
            v4: Ranges::build(v4, file)?,
            v6: Ranges::build(v6, file)?,
            codes,
        })
    }

    /// The division code of the range holding `ip`; an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is
    /// looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        let index = match ip.to_canonical() {
            IpAddr::V4(v4) => self.v4.find(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.find(u128::from(v6)),
        }?;
        self.codes.get(usize::try_from(index).ok()?).map(|c| &**c)
    }

    /// The number of ranges, both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
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
        assert_eq!(db.codes.len(), 3, "codes are interned");
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
}
