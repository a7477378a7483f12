//! Meshwork.
pub mod proto;
