//! Datagrams on the unreliable channel decode as GGRS messages or are refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork::transport::ggrs::decode_message;

fuzz_target!(|data: &[u8]| {
    let _ = decode_message(data);
});
