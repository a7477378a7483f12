//! Frame parsing, reassembly and decoding of link messages never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork::proto::overlay::LinkMsg;
use meshwork::proto::wire::{self, Reassembler};

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode::<LinkMsg>(data);
    let mut r = Reassembler::new(4, 1_000);
    // Treat the input as a sequence of length-prefixed frames.
    let mut rest = data;
    let mut now = 0;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let frame = &rest[2..2 + n];
        if let Ok(Some(body)) = r.push(now, frame) {
            let _ = wire::decode::<LinkMsg>(&body);
        }
        rest = &rest[2 + n..];
        now += 7;
    }
});
