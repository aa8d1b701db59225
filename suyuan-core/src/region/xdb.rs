//! ip2region's `xdb` files (<https://github.com/lionsoul2014/ip2region>): a reader that walks every
//! range of one, for [`super::IpRegions`] to turn into division codes once.
//!
//! The layout, little-endian except IPv6 addresses (big-endian), as ip2region's own searchers read it:
//! - a 256-byte header: format version (`u16`: 2, or 3 since 2025), index policy (`u16`), creation time
//!   (`u32`, Unix seconds), offsets of the first and of the last entry of the segment index (`u32`
//!   each); version 3 adds the address family (`u16` at byte 16: 4 or 6; version 2 files are IPv4);
//! - a vector index, 256 × 256 entries of 8 bytes: the first and last segment of each /16, with which a
//!   searcher narrows its binary search (not needed to walk every segment);
//! - the segment index: one entry per range, sorted: first and last address (4 bytes each for IPv4, 16
//!   for IPv6), then the region text's length (`u16`) and offset (`u32`);
//! - the region texts, UTF-8: `国家|区域|省份|城市|ISP` in version 2 (`中国|0|云南省|昆明市|电信`),
//!   `国家|省份|城市|ISP|国家代码` in version 3 (`中国|云南省|昆明市|电信|CN`); `0` where unknown,
//!   `内网IP` for private ranges.
//!
//! Why a reader of our own rather than a crate: what the platform needs is every range once, at start,
//! to map each region to a division code (see [`super::IpRegions`]), not a search per scan; the crates on
//! crates.io only search (`ip2region` 0.1.0, one release in 2022; `xdb-parse`, whose searches index the
//! file without bounds checks, so a damaged file panics), and ip2region's official Rust binding is not
//! published there. Walking the segment index is a bounds-checked loop over fixed-size entries; every
//! offset is checked against the file, so a damaged file is refused with the entry that is wrong.

/// Size of the header block.
const HEADER_LEN: usize = 256;

/// Size of the vector index that follows the header.
const VECTOR_INDEX_LEN: usize = 256 * 256 * 8;

/// The address family of an xdb file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    /// Bytes of one address in a segment entry.
    fn address_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// Bytes of one segment entry: two addresses, the region's length and offset.
    fn entry_len(self) -> usize {
        2 * self.address_len() + 2 + 4
    }
}

/// A parsed header and the bytes it describes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Xdb<'a> {
    data: &'a [u8],
    /// Format version: 2 or 3 (the layout of the region text differs).
    pub version: u16,
    /// When the file was made, Unix seconds.
    pub created: u32,
    pub family: Family,
    /// Offset of the first segment entry.
    first: usize,
    /// Number of segment entries.
    count: usize,
}

/// One range of addresses and where its region text is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Segment {
    /// First address, as an integer (an IPv4 address fits the low 32 bits).
    pub start: u128,
    /// Last address, inclusive.
    pub end: u128,
    /// Where the region text starts: equal offsets mean the same text, so callers can cache by it and
    /// read it ([`Xdb::region`]) once.
    pub region_offset: u32,
    region_len: u16,
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn offset_at(data: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u32_at(data, at)?).ok()
}

impl<'a> Xdb<'a> {
    /// Reads the header and checks that the segment index lies inside the file.
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        if data.len() < HEADER_LEN + VECTOR_INDEX_LEN {
            return Err(format!(
                "{} bytes: shorter than an xdb header and vector index",
                data.len()
            ));
        }
        let field = |at: usize| u16_at(data, at).ok_or("header cut short");
        let version = field(0)?;
        let family = match version {
            2 => Family::V4,
            3 => match field(16)? {
                4 => Family::V4,
                6 => Family::V6,
                other => return Err(format!("header: address family {other} is neither 4 nor 6")),
            },
            other => return Err(format!("header: format version {other} is not 2 or 3")),
        };
        let created = u32_at(data, 4).ok_or("header cut short")?;
        let first = offset_at(data, 8).ok_or("header cut short")?;
        let last = offset_at(data, 12).ok_or("header cut short")?;
        let entry = family.entry_len();
        let fits = first >= HEADER_LEN + VECTOR_INDEX_LEN
            && last >= first
            && (last - first).is_multiple_of(entry)
            && last.checked_add(entry).is_some_and(|end| end <= data.len());
        if !fits {
            return Err(format!(
                "header: segment index {first}..={last} does not fit a file of {} bytes in \
                 {entry}-byte entries",
                data.len()
            ));
        }
        Ok(Xdb {
            data,
            version,
            created,
            family,
            first,
            count: (last - first) / entry + 1,
        })
    }

    /// The `i`th segment, its region text's place checked against the file.
    pub fn segment(&self, i: usize) -> Result<Segment, String> {
        let n = self.family.address_len();
        let at = self.first + i * self.family.entry_len();
        let entry = self
            .data
            .get(at..at + self.family.entry_len())
            .ok_or_else(|| format!("segment {i}: entry beyond the end of the file"))?;
        let (addresses, rest) = entry.split_at(2 * n);
        let (start, end) = match self.family {
            Family::V4 => {
                let mut words = [0u8; 8];
                words.copy_from_slice(addresses);
                let [a, b, c, d, e, f, g, h] = words;
                (
                    u128::from(u32::from_le_bytes([a, b, c, d])),
                    u128::from(u32::from_le_bytes([e, f, g, h])),
                )
            }
            Family::V6 => {
                let mut words = [0u8; 32];
                words.copy_from_slice(addresses);
                let (first, last) = words.split_at(16);
                let mut a = [0u8; 16];
                let mut b = [0u8; 16];
                a.copy_from_slice(first);
                b.copy_from_slice(last);
                (u128::from_be_bytes(a), u128::from_be_bytes(b))
            }
        };
        let mut tail = [0u8; 6];
        tail.copy_from_slice(rest);
        let [l0, l1, p0, p1, p2, p3] = tail;
        let region_len = u16::from_le_bytes([l0, l1]);
        let region_offset = u32::from_le_bytes([p0, p1, p2, p3]);
        if start > end {
            return Err(format!("segment {i}: first address after the last"));
        }
        let region_end = usize::try_from(region_offset)
            .ok()
            .and_then(|from| from.checked_add(usize::from(region_len)));
        if region_end.is_none_or(|end| end > self.data.len()) {
            return Err(format!(
                "segment {i}: region text beyond the end of the file"
            ));
        }
        Ok(Segment {
            start,
            end,
            region_offset,
            region_len,
        })
    }

    /// Every segment in order; a segment that does not start after the previous one ends is an error.
    pub fn segments(&self) -> impl Iterator<Item = Result<Segment, String>> + '_ {
        let mut previous_end: Option<u128> = None;
        (0..self.count).map(move |i| {
            let segment = self.segment(i)?;
            if previous_end.is_some_and(|end| segment.start <= end) {
                return Err(format!(
                    "segment {i}: overlaps or precedes the segment before it"
                ));
            }
            previous_end = Some(segment.end);
            Ok(segment)
        })
    }

    /// A segment's region text.
    pub fn region(&self, segment: &Segment) -> Result<&'a str, String> {
        let from = usize::try_from(segment.region_offset).map_err(|e| e.to_string())?;
        let bytes = self
            .data
            .get(from..from + usize::from(segment.region_len))
            .ok_or("region text beyond the end of the file")?;
        std::str::from_utf8(bytes).map_err(|_| {
            format!(
                "the region text at byte {} is not UTF-8",
                segment.region_offset
            )
        })
    }

    /// The province and city of a region text that places the range in China (`("云南省", "昆明市")`,
    /// either may be `0`); `None` for other countries and for private or unknown ranges.
    pub fn place<'r>(&self, region: &'r str) -> Option<(&'r str, &'r str)> {
        place(self.version, region)
    }
}

/// [`Xdb::place`] for a format version.
fn place(version: u16, region: &str) -> Option<(&str, &str)> {
    let mut fields = region.split('|');
    let country = fields.next()?;
    let (province, city) = match version {
        2 => {
            let _area = fields.next()?;
            (fields.next()?, fields.next()?)
        }
        _ => (fields.next()?, fields.next()?),
    };
    let in_china = country == "中国" || (version >= 3 && fields.nth(1) == Some("CN"));
    in_china.then_some((province, city))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An xdb file of the given version and family holding these ranges (first, last, region), with an
    /// empty vector index: what ip2region's maker writes, minus the index a searcher would use.
    pub fn make(version: u16, family: Family, ranges: &[(u128, u128, &str)]) -> Vec<u8> {
        let entry = family.entry_len();
        let first = HEADER_LEN + VECTOR_INDEX_LEN;
        let regions_at = first + ranges.len() * entry;
        let mut data = vec![0u8; regions_at];
        data[0..2].copy_from_slice(&version.to_le_bytes());
        data[2..4].copy_from_slice(&1u16.to_le_bytes());
        data[4..8].copy_from_slice(&1_709_087_558u32.to_le_bytes());
        let last = first + ranges.len().saturating_sub(1) * entry;
        data[8..12].copy_from_slice(&(first as u32).to_le_bytes());
        data[12..16].copy_from_slice(&(last as u32).to_le_bytes());
        if version >= 3 {
            let f: u16 = if family == Family::V4 { 4 } else { 6 };
            data[16..18].copy_from_slice(&f.to_le_bytes());
        }
        for (i, (start, end, region)) in ranges.iter().enumerate() {
            let at = first + i * entry;
            let mut put = |offset: usize, bytes: &[u8]| {
                data[at + offset..at + offset + bytes.len()].copy_from_slice(bytes)
            };
            match family {
                Family::V4 => {
                    put(0, &(*start as u32).to_le_bytes());
                    put(4, &(*end as u32).to_le_bytes());
                }
                Family::V6 => {
                    put(0, &start.to_be_bytes());
                    put(16, &end.to_be_bytes());
                }
            }
            let n = family.address_len();
            let offset = data.len() as u32;
            data[at + 2 * n..at + 2 * n + 2].copy_from_slice(&(region.len() as u16).to_le_bytes());
            data[at + 2 * n + 2..at + 2 * n + 6].copy_from_slice(&offset.to_le_bytes());
            data.extend_from_slice(region.as_bytes());
        }
        data
    }

    const V4: &[(u128, u128, &str)] = &[
        (0, 0x00ff_ffff, "0|0|0|内网IP|内网IP"),
        (0x0100_0000, 0x0100_00ff, "中国|0|云南省|昆明市|电信"),
        (0x0100_0100, 0xffff_ffff, "美国|0|加利福尼亚|洛杉矶|0"),
    ];

    #[test]
    fn a_version_2_file_reads_back_its_ranges_in_order() {
        let data = make(2, Family::V4, V4);
        let xdb = Xdb::parse(&data).unwrap();
        assert_eq!((xdb.version, xdb.family, xdb.count), (2, Family::V4, 3));
        assert_eq!(xdb.created, 1_709_087_558);
        let segments: Vec<Segment> = xdb.segments().map(Result::unwrap).collect();
        assert_eq!(segments.len(), 3);
        assert_eq!(
            (
                segments[1].start,
                segments[1].end,
                xdb.region(&segments[1]).unwrap()
            ),
            (0x0100_0000, 0x0100_00ff, "中国|0|云南省|昆明市|电信")
        );
        assert_eq!(segments[2].end, 0xffff_ffff);
    }

    #[test]
    fn a_version_3_ipv6_file_reads_big_endian_addresses() {
        let start = u128::from("2408:8000::".parse::<std::net::Ipv6Addr>().unwrap());
        let data = make(
            3,
            Family::V6,
            &[(start, start + 0xffff, "中国|云南省|昆明市|联通|CN")],
        );
        let xdb = Xdb::parse(&data).unwrap();
        assert_eq!((xdb.version, xdb.family), (3, Family::V6));
        let s = xdb.segment(0).unwrap();
        assert_eq!((s.start, s.end), (start, start + 0xffff));
        assert_eq!(
            xdb.place(xdb.region(&s).unwrap()),
            Some(("云南省", "昆明市"))
        );
    }

    #[test]
    fn place_reads_both_region_layouts_and_only_china() {
        assert_eq!(
            place(2, "中国|0|云南省|昆明市|电信"),
            Some(("云南省", "昆明市"))
        );
        assert_eq!(place(2, "中国|0|内蒙古|0|0"), Some(("内蒙古", "0")));
        assert_eq!(place(2, "0|0|0|内网IP|内网IP"), None);
        assert_eq!(place(2, "美国|0|加利福尼亚|洛杉矶|0"), None);
        assert_eq!(place(2, "中国|0"), None);
        assert_eq!(
            place(3, "中国|福建省|福州市|0|CN"),
            Some(("福建省", "福州市"))
        );
        assert_eq!(place(3, "Australia|Queensland|Brisbane|0|AU"), None);
        assert_eq!(place(3, "0|0|Reserved|Reserved|Reserved"), None);
    }

    #[test]
    fn damaged_files_are_refused_with_what_is_wrong() {
        let good = make(2, Family::V4, V4);
        let err = |data: &[u8]| match Xdb::parse(data) {
            Ok(x) => x
                .segments()
                .find_map(|s| match s {
                    Ok(s) => x.region(&s).err(),
                    Err(e) => Some(e),
                })
                .unwrap(),
            Err(e) => e,
        };
        assert!(err(&good[..1000]).contains("shorter"));
        let mut version = good.clone();
        version[0] = 7;
        assert!(err(&version).contains("version 7"), "{}", err(&version));
        let mut index = good.clone();
        index[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&index).contains("does not fit"), "{}", err(&index));
        let cut = &good[..good.len() - 3];
        assert!(
            err(cut).contains("segment 2: region text beyond"),
            "{}",
            err(cut)
        );
        let mut text = good.clone();
        let n = text.len();
        text[n - 1] = 0xff;
        assert!(err(&text).contains("not UTF-8"), "{}", err(&text));
        let disordered = make(2, Family::V4, &[V4[1], V4[0]]);
        assert!(err(&disordered).contains("segment 1: overlaps"));
        let backwards = make(2, Family::V4, &[(9, 3, "0|0|0|0|0")]);
        assert!(err(&backwards).contains("first address after the last"));
    }
}
