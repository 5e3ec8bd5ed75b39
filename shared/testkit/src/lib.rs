//! Support for the property tests that feed hostile input to the decoders and the envelope
//! parser: a peak-allocation counter, mutations of valid seeds, and the case count every such
//! test runs by default. A dev-dependency only: linking it installs a counting allocator.

pub mod mutation;
pub mod peak_alloc;

use proptest::test_runner::Config;

/// A property test's config: `default_cases` cases unless `PROPTEST_CASES` asks for more or
/// fewer. Setting `cases` explicitly would otherwise override the variable, which proptest
/// only reads for configs that leave the count at its default.
pub fn cases(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        ..Config::default()
    }
}
