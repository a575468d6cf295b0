//! A tiny deterministic PRNG for test and bench data, in its own file so that
//! `benches/common/mod.rs` can include this very definition (`#[path]`) rather than a copy.

/// xorshift64*: a few lines, deterministic, so a failure reproduces from its seed.
///
/// `Rng(state)` starts from a nonzero state as it is; [`Rng::new`] makes one from any seed.
pub struct Rng(pub u64);

impl Rng {
    /// The multiply spreads nearby seeds apart; `| 1` keeps the state off zero, where
    /// xorshift would stay for good.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A lowercase word of `min..=max` letters.
    pub fn word(&mut self, min: usize, max: usize) -> String {
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}
