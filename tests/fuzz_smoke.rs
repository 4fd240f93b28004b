//! The fuzz targets' bodies on stable, for CI: each target's seed corpus
//! (`fuzz/corpus/<target>`) and a few thousand deterministic mutations of it
//! (byte flips, inserted JSON/csv punctuation and invalid UTF-8, cuts,
//! repeats, splices). The real fuzzing runs with `cargo fuzz` (README,
//! Development); this keeps the invariants checked on every build.

use std::path::Path;

use vigil_connectors::format::fuzzing::{check_lines, check_records};

/// A small deterministic PRNG (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"{}[]\",:\n\\ 0-9eE.'\t\r\xff\xc3\x80;()*";

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < data.len() => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at..end);
            }
            3 => data.truncate(at),
            4 if at < data.len() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let piece = data[at..end].to_vec();
                for _ in 0..1 + rng.below(50) {
                    data.splice(at..at, piece.iter().copied());
                }
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    data
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn run(target: &str, runs: usize, check: impl Fn(&[u8])) {
    let seeds = seeds(target);
    for s in &seeds {
        check(s);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..runs {
        let data = mutate(&mut rng, &seeds);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        if result.is_err() {
            panic!(
                "{target}: mutation {i} fails; input: {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}

#[test]
fn decoders_lose_no_record_on_mutated_input() {
    for format in vigil_connectors::format::fuzzing::FORMATS {
        run(&format!("decode_{format}"), 3000, |d| {
            check_lines(format, d);
            check_records(format, d);
        });
    }
}

#[test]
fn the_sql_front_end_answers_mutated_scripts_with_plans_or_errors() {
    run("sql", 1000, vigil::fuzzing::check_script);
}
