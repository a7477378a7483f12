//! A counter: the smallest useful contract, used by tests and the quick start.
//!
//! Input = op byte ‖ fields (little-endian):
//! - `0x01` increment `by u64` → the new total `u64` (checked; overflow aborts). Also counts
//!   per caller and emits `inc` with `caller[32] ‖ by u64 ‖ tick u64`.
//! - `0x02` get → total `u64`
//! - `0x03` get_of `who[32]` → that caller's increments `u64`
//!
//! State: `n` → total; `c‖who` → per-caller count.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;

use meshwork_contract_sdk::codec::{Reader, Writer};
use meshwork_contract_sdk::env::Env;

type Result<T> = core::result::Result<T, &'static str>;

fn read_u64<E: Env>(env: &E, key: &[u8]) -> u64 {
    env.get(key)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// `mw_call`.
pub fn call<E: Env>(env: &mut E, input: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(input);
    match r.u8()? {
        0x01 => {
            let by = r.u64()?;
            r.end()?;
            let total = read_u64(env, b"n")
                .checked_add(by)
                .ok_or("counter overflow")?;
            env.set(b"n", &total.to_le_bytes());
            let who = env.caller();
            let mut key = [b'c'; 33];
            key[1..].copy_from_slice(&who);
            let mine = read_u64(env, &key)
                .checked_add(1)
                .ok_or("counter overflow")?;
            env.set(&key, &mine.to_le_bytes());
            let event = Writer::new().raw(&who).u64(by).u64(env.tick()).finish();
            env.emit(b"inc", &event);
            Ok(total.to_le_bytes().to_vec())
        }
        0x02 => {
            r.end()?;
            Ok(read_u64(env, b"n").to_le_bytes().to_vec())
        }
        0x03 => {
            let who = r.id()?;
            r.end()?;
            let mut key = [b'c'; 33];
            key[1..].copy_from_slice(&who);
            Ok(read_u64(env, &key).to_le_bytes().to_vec())
        }
        _ => Err("unknown op"),
    }
}

#[cfg(target_arch = "wasm32")]
meshwork_contract_sdk::entry!(call = call::<meshwork_contract_sdk::WasmEnv>);
