//! Deterministic randomness. Every row is derived from `(seed, table tag, row id)` alone, so any
//! pass over the dataset can re-derive a row without remembering earlier ones: that is what
//! keeps the generator's memory bounded however large the dataset.
//!
//! SplitMix64 is used on purpose instead of a crate RNG: its output is fixed by its definition,
//! so the same seed produces the same bytes across toolchains and dependency upgrades.

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finaliser: a bijection on `u64` (distinct inputs give distinct outputs),
/// which is what makes keys and tokens derived from row ids unique without bookkeeping.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Table tags, so two tables never share a random stream for the same id.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    Account = 1,
    User,
    Inbox,
    Contact,
    Conversation,
    Message,
    MessageShape,
    Blob,
    BlobContent,
    Label,
    Note,
    Key,
}

#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn for_row(seed: u64, stream: Stream, id: u64) -> Self {
        Self {
            state: mix(seed ^ mix((stream as u64).wrapping_mul(GOLDEN) ^ mix(id))),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in `0..n` (n > 0); the tiny modulo bias is irrelevant for test data.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_for_a_row_is_fixed_by_seed_table_and_id() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::for_row(7, Stream::Message, 42);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::for_row(7, Stream::Message, 42);
        let b: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::for_row(7, Stream::Message, 42).next_u64(),
            Rng::for_row(8, Stream::Message, 42).next_u64()
        );
        assert_ne!(
            Rng::for_row(7, Stream::Message, 42).next_u64(),
            Rng::for_row(7, Stream::Contact, 42).next_u64()
        );
    }

    #[test]
    fn splitmix_output_matches_the_reference_values() {
        // Reference: SplitMix64 seeded with 0 yields these first outputs.
        let mut state = 0u64;
        let mut next = || {
            state = state.wrapping_add(GOLDEN);
            mix(state)
        };
        assert_eq!(next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(next(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn below_stays_in_range_and_fill_covers_odd_lengths() {
        let mut r = Rng::for_row(1, Stream::Blob, 1);
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert!((0..1000).all(|_| (3..=5).contains(&r.range(3, 5))));
        let mut buf = [0u8; 13];
        r.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
