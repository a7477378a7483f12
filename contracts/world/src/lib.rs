//! The sandbox world: a 2D grid of regions where players place and remove blocks; regions can be
//! claimed; every placed block is paid for in the token contract through a nested `call`.
#![no_std]

extern crate alloc;

pub use meshwork_contract_sdk::{codec, env};

pub mod logic;

#[cfg(target_arch = "wasm32")]
meshwork_contract_sdk::entry!(
    call = logic::call::<meshwork_contract_sdk::WasmEnv>,
    init = logic::init::<meshwork_contract_sdk::WasmEnv>,
);
