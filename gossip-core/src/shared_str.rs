//! [`SharedStr`]: the cheap-to-clone string that key events carry.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;
use smol_str::SmolStr;

/// An immutable string that is cheap to clone: up to 23 bytes held in place (a clone copies
/// them), longer ones a reference-counted, UTF-8 checked slice of a buffer (often of the
/// datagram it arrived in).
///
/// It is what [`Event::KeysChanged`](crate::Event::KeysChanged) carries as the owner's name,
/// so that the event costs no allocation, and for most names no atomic reference count
/// either. Use it as a `&str` (it derefs to one and compares with `str`, `&str` and `String`),
/// or turn it into a `String` with `String::from`.
#[derive(Clone, Default)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    /// At most [`INLINE`] bytes, in place.
    Inline(SmolStr),
    /// A slice of a shared buffer.
    Shared(ByteString),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Inline(SmolStr::default())
    }
}

/// The longest string held in place (what `SmolStr` keeps inline).
const INLINE: usize = 23;

impl SharedStr {
    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(text) => text,
            Repr::Shared(text) => text,
        }
    }

    /// Takes `bytes` if they are UTF-8 (a short string is copied in place).
    pub(crate) fn from_utf8(bytes: Bytes) -> Option<Self> {
        if bytes.len() <= INLINE {
            return std::str::from_utf8(&bytes).ok().map(Self::from);
        }
        ByteString::try_from(bytes).ok().map(|text| Self(Repr::Shared(text)))
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl AsRef<[u8]> for SharedStr {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for SharedStr {
    /// As the `str` (so that `Borrow<str>` lookups work).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        if text.len() <= INLINE {
            return Self(Repr::Inline(SmolStr::new(text)));
        }
        Self(Repr::Shared(ByteString::from(text)))
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        if text.len() <= INLINE {
            return Self(Repr::Inline(SmolStr::new(&text)));
        }
        Self(Repr::Shared(ByteString::from(text)))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn short_and_long_strings_compare_and_hash_as_their_text() {
        let long = "a-node-name-of-more-than-23-bytes";
        for text in ["", "node-7", "exactly-23-bytes-long!!", long] {
            let from_str = SharedStr::from(text);
            let from_string = SharedStr::from(text.to_owned());
            let from_bytes = SharedStr::from_utf8(Bytes::copy_from_slice(text.as_bytes())).expect("UTF-8");
            assert_eq!(from_str, from_string);
            assert_eq!(from_str, from_bytes);
            assert_eq!(from_bytes.clone().as_str(), text);
            let map: HashMap<SharedStr, ()> = [(from_bytes, ())].into();
            assert!(map.contains_key(text), "found by its &str");
        }
        assert!(matches!(SharedStr::from("node-7").0, Repr::Inline(_)));
        assert!(matches!(SharedStr::from(long).0, Repr::Shared(_)));
        let (short, long) = (SharedStr::from("b"), SharedStr::from(long));
        assert_eq!(short.cmp(&long), std::cmp::Ordering::Greater, "ordered as text, whatever the form");
        assert_eq!(SharedStr::from_utf8(Bytes::from_static(b"\xff")), None);
        assert_eq!(SharedStr::from_utf8(Bytes::from(vec![0xff; 40])), None);
    }
}
