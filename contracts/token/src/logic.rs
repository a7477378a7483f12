//! Token logic, written against `crate::env::Env` only (the benchmark includes this file natively).
//!
//! Input = op byte ‖ fields (little-endian):
//! - init: `supply u64` — the creator becomes admin and holds the supply
//! - `0x01` transfer `to[32] amount u64`
//! - `0x02` approve `spender[32] amount u64` (sets the allowance)
//! - `0x03` transfer_from `from[32] to[32] amount u64` (spends the caller's allowance)
//! - `0x05` collect `to[32] count u16 (from[32] amount u64)*` → `count` status bytes: for each
//!   entry in order, a `transfer_from(from → to, amount)` that is skipped (status `1`) instead of
//!   aborting when the allowance or balance is short (status `0` = paid). One call collects a
//!   whole tick's fees; `to`'s balance is written once.
//! - `0x04` mint `to[32] amount u64` (admin only)
//! - `0x10` balance_of `who[32]` → `u64`
//! - `0x11` allowance `owner[32] spender[32]` → `u64`
//! - `0x12` total_supply → `u64`
//!
//! State: `a` → admin id; `s` → supply u64; `b‖who` → balance u64; `l‖owner‖spender` → allowance.
//! An allowance of `u64::MAX` is unlimited: spending it leaves it unchanged (and unwritten).

use alloc::vec::Vec;

use crate::codec::{Fixed, Reader};
use crate::env::{Env, Id};

type Result<T> = core::result::Result<T, &'static str>;

fn read_u64<E: Env>(env: &E, key: &[u8]) -> u64 {
    env.get_array::<8>(key).map_or(0, u64::from_le_bytes)
}

/// A `transfer` event: `from[32] ‖ to[32] ‖ amount u64`.
fn transfer_event<E: Env>(env: &mut E, from: &Id, to: &Id, amount: u64) {
    let data = Fixed::<72>::new().raw(from).raw(to).u64(amount);
    env.emit(b"transfer", data.as_slice());
}

fn write_u64<E: Env>(env: &mut E, key: &[u8], value: u64) {
    if value == 0 {
        env.remove(key);
    } else {
        env.set(key, &value.to_le_bytes());
    }
}

fn balance_key(who: &Id) -> [u8; 33] {
    let mut k = [0; 33];
    k[0] = b'b';
    k[1..].copy_from_slice(who);
    k
}

fn allowance_key(owner: &Id, spender: &Id) -> [u8; 65] {
    let mut k = [0; 65];
    k[0] = b'l';
    k[1..33].copy_from_slice(owner);
    k[33..].copy_from_slice(spender);
    k
}

/// Spends `amount` of `owner`'s allowance to `spender`; an unlimited allowance stays as it is.
fn spend_allowance<E: Env>(env: &mut E, owner: &Id, spender: &Id, amount: u64) -> Result<()> {
    let key = allowance_key(owner, spender);
    let allowance = read_u64(env, &key);
    if allowance == u64::MAX {
        return Ok(());
    }
    let left = allowance.checked_sub(amount).ok_or("allowance exceeded")?;
    write_u64(env, &key, left);
    Ok(())
}

/// `collect`: see the module docs.
fn collect<E: Env>(env: &mut E, r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let to = r.id()?;
    let count = r.u16()?;
    let spender = env.caller();
    let mut status = Vec::with_capacity(usize::from(count));
    let mut received = 0u64;
    for _ in 0..count {
        let (from, amount) = (r.id()?, r.u64()?);
        let allowance_key = allowance_key(&from, &spender);
        let allowance = read_u64(env, &allowance_key);
        let from_key = balance_key(&from);
        let left = read_u64(env, &from_key).checked_sub(amount);
        let total = received.checked_add(amount);
        let (Some(left), Some(total)) = (left, total) else {
            status.push(1);
            continue;
        };
        if from == to || allowance < amount {
            status.push(1);
            continue;
        }
        if allowance != u64::MAX {
            write_u64(env, &allowance_key, allowance - amount);
        }
        write_u64(env, &from_key, left);
        received = total;
        transfer_event(env, &from, &to, amount);
        status.push(0);
    }
    r.end()?;
    let to_key = balance_key(&to);
    let balance = read_u64(env, &to_key)
        .checked_add(received)
        .ok_or("balance overflow")?;
    write_u64(env, &to_key, balance);
    Ok(status)
}

fn move_funds<E: Env>(env: &mut E, from: &Id, to: &Id, amount: u64) -> Result<()> {
    let from_key = balance_key(from);
    let from_balance = read_u64(env, &from_key)
        .checked_sub(amount)
        .ok_or("insufficient balance")?;
    write_u64(env, &from_key, from_balance);
    let to_key = balance_key(to);
    let to_balance = read_u64(env, &to_key)
        .checked_add(amount)
        .ok_or("balance overflow")?;
    write_u64(env, &to_key, to_balance);
    transfer_event(env, from, to, amount);
    Ok(())
}

/// `mw_init`.
pub fn init<E: Env>(env: &mut E, input: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(input);
    let supply = r.u64()?;
    r.end()?;
    let admin = env.caller();
    env.set(b"a", &admin);
    write_u64(env, b"s", supply);
    write_u64(env, &balance_key(&admin), supply);
    Ok(Vec::new())
}

/// `mw_call`.
pub fn call<E: Env>(env: &mut E, input: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(input);
    let op = r.u8()?;
    let out = match op {
        0x01 => {
            let (to, amount) = (r.id()?, r.u64()?);
            r.end()?;
            let me = env.caller();
            move_funds(env, &me, &to, amount)?;
            Vec::new()
        }
        0x02 => {
            let (spender, amount) = (r.id()?, r.u64()?);
            r.end()?;
            let me = env.caller();
            write_u64(env, &allowance_key(&me, &spender), amount);
            Vec::new()
        }
        0x03 => {
            let (from, to, amount) = (r.id()?, r.id()?, r.u64()?);
            r.end()?;
            let spender = env.caller();
            spend_allowance(env, &from, &spender, amount)?;
            move_funds(env, &from, &to, amount)?;
            Vec::new()
        }
        0x04 => {
            let (to, amount) = (r.id()?, r.u64()?);
            r.end()?;
            if env.get_array::<32>(b"a") != Some(env.caller()) {
                return Err("only the admin mints");
            }
            let supply = read_u64(env, b"s")
                .checked_add(amount)
                .ok_or("supply overflow")?;
            write_u64(env, b"s", supply);
            let key = balance_key(&to);
            let balance = read_u64(env, &key)
                .checked_add(amount)
                .ok_or("balance overflow")?;
            write_u64(env, &key, balance);
            Vec::new()
        }
        0x05 => return collect(env, &mut r),
        0x10 => {
            let who = r.id()?;
            r.end()?;
            read_u64(env, &balance_key(&who)).to_le_bytes().to_vec()
        }
        0x11 => {
            let (owner, spender) = (r.id()?, r.id()?);
            r.end()?;
            read_u64(env, &allowance_key(&owner, &spender))
                .to_le_bytes()
                .to_vec()
        }
        0x12 => {
            r.end()?;
            read_u64(env, b"s").to_le_bytes().to_vec()
        }
        _ => return Err("unknown op"),
    };
    Ok(out)
}
