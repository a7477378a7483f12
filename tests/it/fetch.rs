//! `fetch()`: the simulator acceptance (lying responders at scale), the core's rejections, and
//! real WebRTC links on loopback.

mod core;
#[cfg(feature = "signalling")]
mod real;
mod sim;
