//! Record framing and payload decoders over arbitrary bytes: no panic, and whatever decodes must
//! re-encode to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ringraft_storage::fuzz_support::check_decoders(data);
});
