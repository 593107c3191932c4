//! Delta application (git's copy/insert instructions) on arbitrary bases and
//! deltas, and the encoder's output applied back (it must give the target).
#![no_main]
use arbitrary::Arbitrary;
use gitclaw_pack::delta::{apply, encode};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    base: &'a [u8],
    delta: &'a [u8],
    max_result: u32,
}

fuzz_target!(|input: Input<'_>| {
    let max = u64::from(input.max_result % (1 << 22));
    if let Ok(result) = apply(input.base, input.delta, max) {
        assert!(result.len() as u64 <= max);
    }
    // The encoder against the same base: apply(encode(base, t)) == t.
    let target = input.delta;
    let delta = encode(input.base, target);
    let rebuilt = apply(input.base, &delta, target.len() as u64).expect("an encoded delta applies");
    assert_eq!(rebuilt, target);
});
