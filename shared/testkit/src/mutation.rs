//! Byte-level mutations of a valid input, the way a fuzzer explores around a seed corpus:
//! random bytes alone almost never get past a format's magic number and header, while a
//! mutated valid file reaches the deep parts of a decoder with a broken structure.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Numbers that break size and offset arithmetic when written over a length or a dimension.
const HOSTILE_WORDS: [u32; 8] = [
    0,
    1,
    0x7F,
    0xFFFF,
    0x0001_0000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
];

/// One edit of a byte string; positions are indexes into whatever length it has by then.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Keep only the bytes before the position.
    Truncate(Index),
    /// Replace one byte.
    SetByte(Index, u8),
    /// Flip one bit of one byte.
    FlipBit(Index, u8),
    /// Insert bytes at the position.
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes from the position.
    Remove(Index, u8),
    /// Write a hostile 32-bit number at the position, big- or little-endian.
    HostileWord(Index, usize, bool),
    /// Copy a run of the input (from, up to this length) to another position (at).
    Duplicate(Index, u8, Index),
}

impl Mutation {
    /// Applies the edit; an empty input is left alone by edits that need a position in it.
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        if len == 0 && !matches!(self, Self::Insert(..)) {
            return;
        }
        match self {
            Self::Truncate(at) => bytes.truncate(at.index(len)),
            Self::SetByte(at, value) => bytes[at.index(len)] = *value,
            Self::FlipBit(at, bit) => bytes[at.index(len)] ^= 1 << (bit % 8),
            Self::Insert(at, extra) => {
                let at = at.index(len + 1);
                bytes.splice(at..at, extra.iter().copied());
            }
            Self::Remove(at, count) => {
                let at = at.index(len);
                bytes.drain(at..(at + usize::from(*count)).min(len));
            }
            Self::HostileWord(at, which, big_endian) => {
                let word = HOSTILE_WORDS[which % HOSTILE_WORDS.len()];
                let word = if *big_endian {
                    word.to_be_bytes()
                } else {
                    word.to_le_bytes()
                };
                let at = at.index(len);
                let end = (at + 4).min(len);
                bytes[at..end].copy_from_slice(&word[..end - at]);
            }
            Self::Duplicate(from, count, at) => {
                let from = from.index(len);
                let run = bytes[from..(from + usize::from(*count)).min(len)].to_vec();
                let at = at.index(len + 1);
                bytes.splice(at..at, run);
            }
        }
    }
}

/// Any one mutation, the cheap local edits more often than the structural ones.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte(at, value)),
        3 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<usize>(), any::<bool>())
            .prop_map(|(at, which, big)| Mutation::HostileWord(at, which, big)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..16))
            .prop_map(|(at, extra)| Mutation::Insert(at, extra)),
        1 => (any::<Index>(), 1..32u8).prop_map(|(at, count)| Mutation::Remove(at, count)),
        1 => (any::<Index>(), 1..64u8, any::<Index>())
            .prop_map(|(from, count, at)| Mutation::Duplicate(from, count, at)),
    ]
}

/// One to `max` mutations, applied in order.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    vec(mutation(), 1..=max)
}

/// `seed` with `edits` applied.
pub fn mutated(seed: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        edit.apply(&mut bytes);
    }
    bytes
}

mod tests {
    use super::*;

    proptest! {
        #[test]
        fn mutations_never_panic_even_on_tiny_inputs(
            seed in vec(any::<u8>(), 0..4),
            edits in mutations(8),
        ) {
            let _ = mutated(&seed, &edits);
        }
    }
}
