//! An overlay node fed arbitrary frames on a link (before and after a real handshake) never
//! panics and keeps its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork::proto::identity::Identity;
use meshwork::proto::overlay::{LinkId, LinkMsg, Overlay, OverlayConfig, TransportId};
use meshwork::proto::wire;

fuzz_target!(|data: &[u8]| {
    let mut node = Overlay::new(Identity::from_seed([1; 32]), OverlayConfig::default(), 0, [2; 32]);
    let link = LinkId(1);
    node.handle_link_up(0, link, TransportId([1; 16]), TransportId([2; 16]));
    let (authenticate, data) = data.split_first().map_or((false, data), |(b, r)| (b & 1 == 1, r));
    if authenticate {
        // Complete a genuine handshake so the fuzzer reaches the authenticated paths.
        let peer = Identity::from_seed([3; 32]);
        let mut our_nonce = None;
        while let Some(t) = node.poll_transmit() {
            if let Ok(Some(LinkMsg::Hello { nonce, .. })) =
                wire::Reassembler::new(1, 1).push(0, &t.frame).map(|b| b.and_then(|b| wire::decode(&b).ok()))
            {
                our_nonce = Some(nonce);
            }
        }
        let theirs = [9u8; 16];
        let hello = LinkMsg::Hello { public_key: peer.public_key(), nonce: theirs };
        for f in wire::encode(&hello, 0).expect("encodes") {
            node.handle_frame(1, link, &f);
        }
        if let Some(n) = our_nonce {
            let m = meshwork::proto::overlay::msg::auth_message(TransportId([2; 16]), TransportId([1; 16]), &n, &theirs);
            let auth = LinkMsg::Auth { signature: peer.sign(meshwork::proto::identity::Domain::LinkAuth, &m) };
            for f in wire::encode(&auth, 1).expect("encodes") {
                node.handle_frame(2, link, &f);
            }
        }
    }
    let mut rest = data;
    let mut now = 10;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        node.handle_frame(now, link, &rest[2..2 + n]);
        rest = &rest[2 + n..];
        now += 50;
        node.handle_timeout(now);
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
    }
    assert!(node.link_count() <= 1);
});
