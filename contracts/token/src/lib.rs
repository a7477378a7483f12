//! A fungible token: balances, allowances, an admin who mints. Integer amounts, checked
//! arithmetic; every failure aborts (and so rolls back).
#![no_std]

extern crate alloc;

pub use meshwork_contract_sdk::{codec, env};

pub mod logic;

#[cfg(target_arch = "wasm32")]
meshwork_contract_sdk::entry!(
    call = logic::call::<meshwork_contract_sdk::WasmEnv>,
    init = logic::init::<meshwork_contract_sdk::WasmEnv>,
);
