//! The one hash every feature goes through.
//!
//! Written here rather than taken from `std` because the model files store weights by bucket: a hasher that
//! changed between Rust releases would silently scramble every shipped model. FNV-1a lets a feature's hash be
//! extended byte by byte, which the n-gram loops use to hash all n-grams starting at one character in one pass.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a state that can be extended and read at any point. (`Default` is an empty slot's
/// placeholder, not a state to hash from: use [`FeatureHash::new`].)
#[derive(Clone, Copy, Debug, Default)]
pub struct FeatureHash(u64);

impl FeatureHash {
    /// A state seeded by a feature family, so equal strings of different families land apart.
    pub fn new(family: u8) -> Self {
        let mut h = Self(FNV_OFFSET);
        h.byte(family);
        h
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(FNV_PRIME);
    }

    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    #[inline]
    pub fn char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.bytes(c.encode_utf8(&mut buf).as_bytes());
    }

    /// The bucket of the hash so far among `2^bits`. FNV's low bits mix poorly, so the state is finalised
    /// with a multiply-xorshift before taking the top bits.
    #[inline]
    pub fn bucket(&self, bits: u32) -> u32 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x >> (64 - bits)) as u32
    }
}

/// FNV-1a over a byte string: the checksum of model files.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = FeatureHash(FNV_OFFSET);
    h.bytes(bytes);
    h.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_values() {
        // These numbers are baked into every shipped model: if this test fails, the models must be retrained.
        let mut h = FeatureHash::new(1);
        h.bytes(b"hello");
        assert_eq!(h.bucket(17), 38_762);
        assert_eq!(checksum(b"colloquy"), 0xbaa1_6ab3_cb44_7599);
    }

    #[test]
    fn families_separate() {
        let mut a = FeatureHash::new(1);
        let mut b = FeatureHash::new(2);
        a.bytes(b"word");
        b.bytes(b"word");
        assert_ne!(a.bucket(20), b.bucket(20));
    }
}
