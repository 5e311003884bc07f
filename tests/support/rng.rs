//! A tiny seeded generator (xorshift64*) for the generated-input tests: the same seed gives the
//! same corpus, so a failure names a case that can be replayed.

pub struct Rng(pub u64);

#[allow(dead_code)] // Each test crate uses part of it.
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}
