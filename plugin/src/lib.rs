//! Meshwork.
#[cfg(feature = "bevy")]
pub mod bevy;
pub mod persist;
pub mod proto;
#[cfg(feature = "sim")]
pub mod sim;
pub mod transport;
