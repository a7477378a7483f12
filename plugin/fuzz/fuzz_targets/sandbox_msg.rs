//! What sandbox players send each other: world-topic and direct messages (`SandboxMsg`) and
//! GGRS inputs (`Pad`) decode or are refused, never panic. A message that decodes re-encodes to
//! one that decodes equal; an input's action and position stay inside the world, and a frame
//! of the avatars' simulation on any inputs keeps every avatar inside it too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_sandbox::input::{Pad, Sim, unpad, unpad_position};
use meshwork_sandbox::net::SandboxMsg;
use meshwork_sandbox::world::{cells_x, cells_y};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SandboxMsg::decode(data) {
        let again = SandboxMsg::decode(&msg.encode()).expect("a decoded message re-decodes");
        assert_eq!(again, msg);
    }
    let (w, h) = (cells_x() as i32 * 100, cells_y() as i32 * 100);
    let pads: Vec<Pad> = data
        .chunks_exact(14)
        .take(16)
        .map(|c| c.try_into().expect("14 bytes"))
        .collect();
    let mut sim = Sim::default();
    for pad in &pads {
        if let Some(action) = unpad(pad) {
            let (x, y) = action.cell();
            assert!(x < cells_x() && y < cells_y());
        }
        if let Some((x, y)) = unpad_position(pad) {
            assert!((0..=w).contains(&x) && (0..=h).contains(&y));
        }
    }
    for _ in 0..3 {
        sim.advance(&pads);
    }
    for (x, y) in sim.avatars.iter().flatten() {
        assert!((0..=w).contains(x) && (0..=h).contains(y));
    }
});
