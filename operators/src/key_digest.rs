//! The 128-bit key digests dedup and window keep in their state (dedup also
//! in its checkpoints): xxh3-128 of the key's parts, each preceded by its
//! length as 4 little-endian bytes so ("ab","c") and ("a","bc") stay apart.
//!
//! Hashed in one call over the parts laid out in a buffer: for keys of a few
//! dozen bytes that is several times cheaper than the streaming hasher (whose
//! state is set up and fed part by part), and the digest is the same — xxh3
//! defines the streaming form as equal to the one-shot one, which the tests
//! check, so existing checkpoints stay valid.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_128;

/// A map keyed by digests. Hashing a digest with the standard SipHash cost
/// dedup more than making the digest; foldhash is a few multiplies and
/// still seeded per process, so crafted event ids cannot pile into one
/// bucket.
pub(crate) type DigestMap<V> = HashMap<u128, V, foldhash::fast::RandomState>;

/// Keys up to this many bytes (prefixes included) are laid out on the stack.
const INLINE: usize = 256;

/// The digest of a key made of `parts`.
pub(crate) fn key_digest(parts: &[&str]) -> u128 {
    let len: usize = parts.iter().map(|p| 4 + p.len()).sum();
    if len <= INLINE {
        let mut buf = [0u8; INLINE];
        let mut at = 0;
        for part in parts {
            buf[at..at + 4].copy_from_slice(&(part.len() as u32).to_le_bytes());
            at += 4;
            buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        xxh3_128(&buf[..at])
    } else {
        let mut buf = Vec::with_capacity(len);
        for part in parts {
            buf.extend_from_slice(&(part.len() as u32).to_le_bytes());
            buf.extend_from_slice(part.as_bytes());
        }
        xxh3_128(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::Xxh3;

    /// How the digests were computed before: the streaming hasher.
    fn streaming(parts: &[&str]) -> u128 {
        let mut h = Xxh3::new();
        for part in parts {
            h.update(&(part.len() as u32).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.digest128()
    }

    #[test]
    fn equals_the_streaming_digest_at_every_length() {
        let long = "x".repeat(5000);
        // Around xxh3's internal size classes (16, 128, 240 bytes) and the
        // inline buffer's size, and far beyond.
        for n in [
            0, 1, 3, 12, 16, 17, 100, 128, 129, 228, 240, 241, 244, 245, 300, 1024, 5000,
        ] {
            let id = &long[..n];
            let parts = ["tenant-0001", "/soma/agents", id];
            assert_eq!(key_digest(&parts), streaming(&parts), "id of {n} bytes");
        }
        assert_eq!(key_digest(&[]), streaming(&[]));
        assert_eq!(
            key_digest(&["t", "gpt-4o", "openai", ""]),
            streaming(&["t", "gpt-4o", "openai", ""])
        );
    }

    #[test]
    fn parts_stay_apart() {
        assert_ne!(key_digest(&["ab", "c"]), key_digest(&["a", "bc"]));
    }
}
