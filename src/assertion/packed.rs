//! A session's identity headers, packed for memory: every value in one shared buffer, every
//! name an index into the process's table of header names.
//!
//! As a `Vec<(HeaderName, HeaderValue)>`, 14 headers took about 1.5 KB per session (72 bytes of
//! vector slot and one heap copy per value, plus the reference-count block each copy gets on
//! its first request). Packed they take 8 bytes per header, pointing into the session's
//! identity buffer, which the values not already there byte for byte follow
//! ([`PackedHeaders::pack_after`]; most values are the claims' own texts). On each request the
//! values are handed to the request as slices of that shared buffer (a reference count each, no
//! copy); the names are clones of the table's.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// Distinct header names shared between sessions (claims come from providers: bounded). A
/// name beyond them is kept in the session's own buffer.
pub const MAX_INTERNED: usize = 4096;

/// Interned names by index, read without a lock on every request.
static TABLE: [OnceLock<HeaderName>; MAX_INTERNED] = [const { OnceLock::new() }; MAX_INTERNED];

/// The index of each interned name (taken only when sessions are built).
fn indices() -> &'static Mutex<HashMap<HeaderName, u16>> {
    static INDICES: OnceLock<Mutex<HashMap<HeaderName, u16>>> = OnceLock::new();
    INDICES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A header name, shared by every session and signer that uses it: a name outside HTTP's
/// standard set is a heap copy, which a million sessions would otherwise each hold.
pub fn interned(name: &str) -> Option<HeaderName> {
    let header = HeaderName::from_bytes(name.as_bytes()).ok()?;
    Some(match index_of(&header) {
        Some(index) => TABLE[usize::from(index)].get().cloned().unwrap_or(header),
        None => header,
    })
}

/// The name's index in the table, interning it while there is room.
fn index_of(name: &HeaderName) -> Option<u16> {
    let mut indices = indices().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(index) = indices.get(name) {
        return Some(*index);
    }
    let index = indices.len();
    if index >= MAX_INTERNED {
        return None;
    }
    let index = u16::try_from(index).ok()?;
    // The table slot is written once, under the lock, before the index is handed out. Its
    // text is kept for the process's life (every request clones the name, see `lasting`); the
    // index map keys on the same text, not on a second copy.
    let kept = crate::lasting::name(name);
    let _ = TABLE[usize::from(index)].set(kept.clone());
    indices.insert(kept, index);
    Some(index)
}

/// Where one header's name and value are: 8 bytes.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The interned name's index, or [`INLINE`]: the name's bytes then its length (two bytes,
    /// little-endian) precede the value (and its long length).
    name: u16,
    /// The value's length, or [`LONG`]: its length is the four bytes (little-endian) before it.
    len: u16,
    /// Where the value starts in the buffer.
    start: u32,
}

const INLINE: u16 = u16::MAX;
const LONG: u16 = u16::MAX;

/// Identity headers, packed: where each name and value is in a buffer the session owns (its
/// compact identity's, see [`PackedHeaders::pack_after`]). Built once per session; cheap to
/// iterate on every request.
#[derive(Clone, Debug, Default)]
pub struct PackedHeaders {
    entries: Box<[Entry]>,
}

impl PackedHeaders {
    /// Packs `headers`, in their order, after `prefix` (a session's compact identity): a value
    /// found in `prefix` byte for byte is a slice of it, any other is written after it. Returns
    /// the entries and the buffer they point into (`prefix` first); `None` when the buffer
    /// would exceed 4 GiB (never from a bounded login).
    pub fn pack_after(
        prefix: Vec<u8>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Option<(Self, Vec<u8>)> {
        let prefix_len = prefix.len();
        let mut buffer = prefix;
        let mut entries = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let value = value.as_bytes();
            let index = index_of(name);
            let short = u16::try_from(value.len()).ok().filter(|len| *len != LONG);
            let found = match (index, short) {
                (Some(_), Some(_)) => find(&buffer[..prefix_len], value),
                _ => None,
            };
            let start = match found {
                Some(at) => at,
                None => {
                    if index.is_none() {
                        let name = name.as_str().as_bytes();
                        buffer.extend_from_slice(name);
                        buffer.extend_from_slice(&u16::try_from(name.len()).ok()?.to_le_bytes());
                    }
                    if short.is_none() {
                        buffer.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
                    }
                    buffer.extend_from_slice(value);
                    buffer.len() - value.len()
                }
            };
            u32::try_from(start + value.len()).ok()?;
            entries.push(Entry {
                name: index.unwrap_or(INLINE),
                len: short.unwrap_or(LONG),
                start: u32::try_from(start).ok()?,
            });
        }
        // A copy of the exact length: shrinking in place may keep the larger block (mimalloc
        // keeps a block at most twice the new size), ~250 bytes a session here.
        if buffer.capacity() > buffer.len() {
            buffer = buffer.as_slice().to_vec();
        }
        Some((
            PackedHeaders {
                entries: entries.into_boxed_slice(),
            },
            buffer,
        ))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes held besides the struct itself (the buffer is the session's identity's).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
    }

    /// The headers, in their packed order, from the buffer [`Self::pack_after`] returned.
    /// Values share the buffer (no copy).
    pub fn iter<'a>(
        &'a self,
        buffer: &'a Bytes,
    ) -> impl Iterator<Item = (HeaderName, HeaderValue)> + 'a {
        self.entries.iter().filter_map(move |entry| {
            let start = usize::try_from(entry.start).ok()?;
            let (len, mut before) = if entry.len == LONG {
                let at = start.checked_sub(4)?;
                let len = buffer.get(at..start)?;
                (
                    u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
                    at,
                )
            } else {
                (usize::from(entry.len), start)
            };
            let name = if entry.name == INLINE {
                let at = before.checked_sub(2)?;
                let length = buffer.get(at..before)?;
                before = at.checked_sub(usize::from(u16::from_le_bytes([length[0], length[1]])))?;
                HeaderName::from_bytes(buffer.get(before..at)?).ok()?
            } else {
                TABLE.get(usize::from(entry.name))?.get()?.clone()
            };
            let end = start.checked_add(len).filter(|end| *end <= buffer.len())?;
            let value = HeaderValue::from_maybe_shared(buffer.slice(start..end)).ok()?;
            Some((name, value))
        })
    }
}

/// Where `needle` first occurs in `haystack` (an empty needle: at 0).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs after `prefix`, then reads back: the headers, and the buffer.
    fn round_trip(
        prefix: &[u8],
        headers: &[(HeaderName, HeaderValue)],
    ) -> (Vec<(HeaderName, HeaderValue)>, Bytes) {
        let (packed, buffer) = PackedHeaders::pack_after(prefix.to_vec(), headers).unwrap();
        assert_eq!(packed.len(), headers.len());
        let buffer = Bytes::from(buffer);
        assert_eq!(&buffer[..prefix.len()], prefix, "the prefix stays first");
        let back = packed.iter(&buffer).collect::<Vec<_>>();
        // Every request gets the same again.
        assert_eq!(packed.iter(&buffer).collect::<Vec<_>>(), back);
        (back, buffer)
    }

    #[test]
    fn packed_headers_come_back_as_they_went_in() {
        let headers: Vec<(HeaderName, HeaderValue)> = vec![
            (
                interned("x-guichet-sub").unwrap(),
                HeaderValue::from_static("0123-abcd"),
            ),
            (
                interned("x-guichet-given-name").unwrap(),
                HeaderValue::from_static("H%C3%A9l%C3%A8ne"),
            ),
            (
                interned("x-guichet-empty").unwrap(),
                HeaderValue::from_static(""),
            ),
            (
                HeaderName::from_static("accept-language"),
                HeaderValue::from_static("fr"),
            ),
            (
                interned("x-guichet-list").unwrap(),
                HeaderValue::from_bytes(b"a\\,b,\xe9").unwrap(),
            ),
        ];
        assert_eq!(round_trip(b"", &headers).0, headers);
        let (empty, buffer) = PackedHeaders::pack_after(Vec::new(), &[]).unwrap();
        assert!(empty.is_empty() && buffer.is_empty());
        let none = PackedHeaders::default();
        assert_eq!(none.iter(&Bytes::new()).count(), 0);
    }

    #[test]
    fn values_found_in_the_prefix_are_not_written_again() {
        let prefix = b"\x0cagentconnect\x04s-42agent@x.gouv.fr";
        let headers = vec![
            (
                interned("x-guichet-provider").unwrap(),
                HeaderValue::from_static("agentconnect"),
            ),
            (
                interned("x-guichet-email").unwrap(),
                HeaderValue::from_static("agent@x.gouv.fr"),
            ),
            // Across two texts of the prefix: still the same bytes.
            (
                interned("x-guichet-odd").unwrap(),
                HeaderValue::from_static("42agent"),
            ),
            (
                interned("x-guichet-given-name").unwrap(),
                HeaderValue::from_static("H%C3%A9l%C3%A8ne"),
            ),
            (
                interned("x-guichet-empty").unwrap(),
                HeaderValue::from_static(""),
            ),
        ];
        let (back, buffer) = round_trip(prefix, &headers);
        assert_eq!(back, headers);
        // Only the value the prefix lacks was written after it.
        assert_eq!(buffer.len(), prefix.len() + "H%C3%A9l%C3%A8ne".len());
    }

    #[test]
    fn values_of_any_length_come_back() {
        for len in [65_534, 65_535, 65_536, 70_000] {
            let long = HeaderValue::from_bytes(&vec![b'v'; len]).unwrap();
            let headers = vec![
                (interned("x-guichet-long").unwrap(), long.clone()),
                (
                    interned("x-guichet-sub").unwrap(),
                    HeaderValue::from_static("s"),
                ),
                (HeaderName::from_static("x-guichet-long-inline-maybe"), long),
            ];
            assert_eq!(round_trip(b"vvvv s", &headers).0, headers, "{len}");
        }
    }

    proptest::proptest! {
        /// Whatever the prefix and the values, the headers come back exactly, and the prefix
        /// too (names beyond the table: `names_beyond_the_table_are_kept_in_the_session`).
        #[test]
        fn any_headers_after_any_prefix_come_back(
            prefix in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            values in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(b"ab \t%,\x80\xff".to_vec()), 0..6),
                0..8,
            ),
        ) {
            let headers: Vec<(HeaderName, HeaderValue)> = values
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let name = interned(&format!("x-guichet-p{i}")).unwrap();
                    (name, HeaderValue::from_bytes(value).unwrap())
                })
                .collect();
            proptest::prop_assert_eq!(round_trip(&prefix, &headers).0, headers);
        }
    }

    #[test]
    fn names_beyond_the_table_are_kept_in_the_session() {
        // Fill the process-wide table, then pack names it can no longer take.
        for i in 0..MAX_INTERNED {
            interned(&format!("x-guichet-filler-{i}"));
        }
        let long = HeaderValue::from_bytes(&vec![b'w'; 70_000]).unwrap();
        let headers: Vec<(HeaderName, HeaderValue)> = (0..3)
            .map(|i| {
                (
                    HeaderName::from_bytes(format!("x-guichet-beyond-{i}").as_bytes()).unwrap(),
                    HeaderValue::from_bytes(format!("value {i}").as_bytes()).unwrap(),
                )
            })
            .chain([
                (
                    interned("x-guichet-sub").unwrap(),
                    HeaderValue::from_static("s"),
                ),
                (HeaderName::from_static("x-guichet-beyond-long"), long),
            ])
            .collect();
        assert!(index_of(&headers[0].0).is_none());
        let (packed, _) = PackedHeaders::pack_after(Vec::new(), &headers).unwrap();
        assert!(packed.entries.iter().filter(|e| e.name == INLINE).count() >= 4);
        assert_eq!(round_trip(b"", &headers).0, headers);
        // After a prefix holding some of the values too.
        assert_eq!(round_trip(b"value 1 and s", &headers).0, headers);
    }
}
