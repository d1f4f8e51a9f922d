//! A session's identity headers, packed for memory: every value in one shared buffer, every
//! name an index into the process's table of header names.
//!
//! As a `Vec<(HeaderName, HeaderValue)>`, 14 headers took about 1.5 KB per session (72 bytes of
//! vector slot and one heap copy per value, plus the reference-count block each copy gets on
//! its first request). Packed they take one buffer and 12 bytes per header. On each request the
//! values are handed to the request as slices of the shared buffer (a reference count each, no
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

/// A header name, shared by every session that uses it: a name outside HTTP's standard set is
/// a heap copy, which a million sessions would otherwise each hold.
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
    // The table slot is written once, under the lock, before the index is handed out.
    let _ = TABLE[usize::from(index)].set(name.clone());
    indices.insert(name.clone(), index);
    Some(index)
}

/// Where one header's name and value are. Entries are laid out in order: each one's bytes
/// start where the previous one's end.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The interned name's index, or [`INLINE`]: the name's bytes precede the value's.
    name: u16,
    /// Where the value starts in the buffer.
    value_start: u32,
    /// Where the value ends.
    end: u32,
}

const INLINE: u16 = u16::MAX;

/// Identity headers, packed. Built once per session; cheap to iterate on every request.
#[derive(Clone, Debug, Default)]
pub struct PackedHeaders {
    buffer: Bytes,
    entries: Box<[Entry]>,
}

impl PackedHeaders {
    /// Packs `headers`, in their order. `None` when their bytes exceed 4 GiB (never from a
    /// bounded login).
    pub fn pack(headers: &[(HeaderName, HeaderValue)]) -> Option<Self> {
        let mut buffer = Vec::with_capacity(headers.iter().map(|(_, v)| v.len()).sum());
        let mut entries = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = match index_of(name) {
                Some(index) => index,
                None => {
                    buffer.extend_from_slice(name.as_str().as_bytes());
                    INLINE
                }
            };
            let value_start = u32::try_from(buffer.len()).ok()?;
            buffer.extend_from_slice(value.as_bytes());
            let end = u32::try_from(buffer.len()).ok()?;
            entries.push(Entry {
                name,
                value_start,
                end,
            });
        }
        Some(PackedHeaders {
            buffer: Bytes::from(buffer),
            entries: entries.into_boxed_slice(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes held besides the struct itself.
    pub fn heap_bytes(&self) -> usize {
        self.buffer.len() + std::mem::size_of_val(&*self.entries)
    }

    /// The headers, in their packed order. Values share the buffer (no copy).
    pub fn iter(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
        let mut previous_end = 0usize;
        self.entries.iter().filter_map(move |entry| {
            let start = previous_end;
            let value_start = usize::try_from(entry.value_start).ok()?;
            let end = usize::try_from(entry.end).ok()?;
            previous_end = end;
            let name = if entry.name == INLINE {
                HeaderName::from_bytes(self.buffer.get(start..value_start)?).ok()?
            } else {
                TABLE.get(usize::from(entry.name))?.get()?.clone()
            };
            let value = HeaderValue::from_maybe_shared(self.buffer.slice(value_start..end)).ok()?;
            Some((name, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let packed = PackedHeaders::pack(&headers).unwrap();
        assert_eq!(packed.len(), headers.len());
        assert_eq!(packed.iter().collect::<Vec<_>>(), headers);
        // Every request gets the same again.
        assert_eq!(packed.iter().collect::<Vec<_>>(), headers);
        assert!(PackedHeaders::pack(&[]).unwrap().is_empty());
        assert_eq!(PackedHeaders::default().iter().collect::<Vec<_>>(), vec![]);
    }

    #[test]
    fn names_beyond_the_table_are_kept_in_the_session() {
        // Fill the process-wide table, then pack names it can no longer take.
        for i in 0..MAX_INTERNED {
            interned(&format!("x-guichet-filler-{i}"));
        }
        let headers: Vec<(HeaderName, HeaderValue)> = (0..3)
            .map(|i| {
                (
                    HeaderName::from_bytes(format!("x-guichet-beyond-{i}").as_bytes()).unwrap(),
                    HeaderValue::from_bytes(format!("value {i}").as_bytes()).unwrap(),
                )
            })
            .chain([(
                interned("x-guichet-sub").unwrap(),
                HeaderValue::from_static("s"),
            )])
            .collect();
        assert!(index_of(&headers[0].0).is_none());
        let packed = PackedHeaders::pack(&headers).unwrap();
        assert_eq!(packed.iter().collect::<Vec<_>>(), headers);
        assert!(packed.entries.iter().filter(|e| e.name == INLINE).count() >= 3);
    }
}
