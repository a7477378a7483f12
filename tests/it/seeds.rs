//! What every simulator test shares: the seed corpus, the slow-test switch and the
//! `reproduce:` line printed on failure.

/// Seeds to run: `SIM_SEED` if set, else `corpus` (the fixed CI corpus of the calling test).
pub fn seeds(corpus: &[u64]) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED must be a u64")],
        Err(_) => corpus.to_vec(),
    }
}

/// Whether slow variants run (`MESHWORK_SLOW_TESTS=1`).
pub fn slow() -> bool {
    std::env::var("MESHWORK_SLOW_TESTS").is_ok_and(|v| v == "1")
}

/// Run `check` and print the reproduce line if it panics.
pub fn with_seed(test: &str, seed: u64, check: impl FnOnce(u64)) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(seed)));
    if let Err(e) = result {
        eprintln!(
            "reproduce: SIM_SEED={seed} cargo test -p meshwork --features sim --test it {test}"
        );
        std::panic::resume_unwind(e);
    }
}
