//! Fetch messages: decoding never panics, and a fetch core fed arbitrary messages (requests,
//! answers, payments, audits, findings) never panics and keeps its tables bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork::proto::fetch::{Fetch, FetchConfig, FetchMsg};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::Amount;

fuzz_target!(|data: &[u8]| {
    let _ = FetchMsg::decode(data);
    let me = Identity::from_seed([1; 32]);
    let cfg = FetchConfig {
        price: Amount(u64::from(data.first().copied().unwrap_or(0) & 1)),
        referees: vec![me.public_key()],
        referee_quorum: 1,
        ..FetchConfig::default()
    };
    let mut core = Fetch::new(me, cfg, [2; 32]);
    core.serve_path("x");
    // The input as a sequence of length-prefixed messages, at increasing times.
    let mut rest = data;
    let mut now = 0;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let _ = core.handle_message(now, PeerId([3; 32]), &rest[2..2 + n]);
        rest = &rest[2 + n..];
        now += 13;
        if core.poll_timeout() <= now {
            core.handle_timeout(now);
        }
        while core.poll_send().is_some() {}
        while core.poll_event().is_some() {}
    }
    assert!(core.pending() <= FetchConfig::default().pending_max);
});
