//! World logic, written against `crate::env::Env` only (the benchmark includes this file natively).
//!
//! The world is `regions_x × regions_y` regions of `region_size × region_size` cells. A cell holds
//! at most one block (a non-zero kind byte and who placed it). A region is unowned or owned by one
//! player; in an owned region only the owner builds or removes.
//!
//! Input = op byte ‖ fields (little-endian):
//! - init: `token[32] treasury[32] regions_x u16 regions_y u16 region_size u16 block_price u64
//!   claim_price u64` (players must `approve` the world in the token contract)
//! - `0x01` place `x u32 y u32 kind u8` — cell empty, region unowned or the caller's; charges
//!   `block_price` with token `transfer_from(caller → treasury)` → the region's block count `u32`
//! - `0x02` remove `x u32 y u32` — by the region's owner, or by the placer in an unowned region
//! - `0x03` claim `rx u16 ry u16` — an unowned region, for `claim_price`
//! - `0x04` release `rx u16 ry u16` — by its owner
//! - `0x10` block `x u32 y u32` → `kind u8 ‖ placer[32]`, or empty
//! - `0x11` region `rx u16 ry u16` → `owner[32] (zeros if none) ‖ blocks u32`
//!
//! State: `cfg` → the init fields; `B‖x u32‖y u32` → `kind ‖ placer`;
//! `R‖rx u16‖ry u16` → `owner[32] ‖ blocks u32` (absent = unowned and empty).

use alloc::vec::Vec;

use crate::codec::{Reader, Writer};
use crate::env::{CallError, Env, Id};

type Result<T> = core::result::Result<T, &'static str>;

/// Fuel the world lends the token contract for one payment (it uses far less).
pub const PAYMENT_FUEL: u64 = 1_000_000;

const NOBODY: Id = [0; 32];

struct Config {
    token: Id,
    treasury: Id,
    regions_x: u16,
    regions_y: u16,
    region_size: u16,
    block_price: u64,
    claim_price: u64,
}

impl Config {
    fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let config = Self {
            token: r.id()?,
            treasury: r.id()?,
            regions_x: r.u16()?,
            regions_y: r.u16()?,
            region_size: r.u16()?,
            block_price: r.u64()?,
            claim_price: r.u64()?,
        };
        r.end()?;
        if config.regions_x == 0 || config.regions_y == 0 || config.region_size == 0 {
            return Err("empty world");
        }
        Ok(config)
    }

    fn load<E: Env>(env: &E) -> Result<Self> {
        Self::parse(&env.get(b"cfg").ok_or("world not initialised")?)
    }

    /// The region of cell `(x, y)`, if the cell is inside the world.
    fn region_of(&self, x: u32, y: u32) -> Result<(u16, u16)> {
        let size = u32::from(self.region_size);
        let (rx, ry) = (x / size, y / size);
        if rx >= u32::from(self.regions_x) || ry >= u32::from(self.regions_y) {
            return Err("outside the world");
        }
        Ok((rx as u16, ry as u16))
    }

    fn check_region(&self, rx: u16, ry: u16) -> Result<()> {
        if rx >= self.regions_x || ry >= self.regions_y {
            return Err("outside the world");
        }
        Ok(())
    }
}

struct Region {
    owner: Id,
    blocks: u32,
}

fn region_key(rx: u16, ry: u16) -> [u8; 5] {
    let mut k = [b'R'; 5];
    k[1..3].copy_from_slice(&rx.to_le_bytes());
    k[3..5].copy_from_slice(&ry.to_le_bytes());
    k
}

fn block_key(x: u32, y: u32) -> [u8; 9] {
    let mut k = [b'B'; 9];
    k[1..5].copy_from_slice(&x.to_le_bytes());
    k[5..9].copy_from_slice(&y.to_le_bytes());
    k
}

fn load_region<E: Env>(env: &E, rx: u16, ry: u16) -> Result<Region> {
    match env.get(&region_key(rx, ry)) {
        None => Ok(Region {
            owner: NOBODY,
            blocks: 0,
        }),
        Some(bytes) => {
            let mut r = Reader::new(&bytes);
            let region = Region {
                owner: r.id()?,
                blocks: r.u32()?,
            };
            r.end()?;
            Ok(region)
        }
    }
}

fn store_region<E: Env>(env: &mut E, rx: u16, ry: u16, region: &Region) {
    let key = region_key(rx, ry);
    if region.owner == NOBODY && region.blocks == 0 {
        env.remove(&key);
    } else {
        env.set(
            &key,
            &Writer::new().raw(&region.owner).u32(region.blocks).finish(),
        );
    }
}

/// Makes `payer` pay `amount` to the treasury through the token contract.
fn charge<E: Env>(env: &mut E, config: &Config, payer: &Id, amount: u64) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let input = Writer::new()
        .u8(0x03)
        .raw(payer)
        .raw(&config.treasury)
        .u64(amount)
        .finish();
    match env.call(&config.token, &input, PAYMENT_FUEL) {
        Ok(_) => Ok(()),
        Err(CallError::Aborted(_)) => Err("payment refused"),
        Err(_) => Err("payment failed"),
    }
}

/// `mw_init`.
pub fn init<E: Env>(env: &mut E, input: &[u8]) -> Result<Vec<u8>> {
    Config::parse(input)?;
    env.set(b"cfg", input);
    Ok(Vec::new())
}

/// `mw_call`.
pub fn call<E: Env>(env: &mut E, input: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(input);
    let op = r.u8()?;
    let config = Config::load(env)?;
    let caller = env.caller();
    match op {
        0x01 => {
            let (x, y, kind) = (r.u32()?, r.u32()?, r.u8()?);
            r.end()?;
            if kind == 0 {
                return Err("kind 0 is air");
            }
            let (rx, ry) = config.region_of(x, y)?;
            let mut region = load_region(env, rx, ry)?;
            if region.owner != NOBODY && region.owner != caller {
                return Err("region owned by another player");
            }
            let key = block_key(x, y);
            if env.get(&key).is_some() {
                return Err("cell occupied");
            }
            charge(env, &config, &caller, config.block_price)?;
            env.set(&key, &Writer::new().u8(kind).raw(&caller).finish());
            region.blocks = region.blocks.checked_add(1).ok_or("region full")?;
            store_region(env, rx, ry, &region);
            let event = Writer::new().u32(x).u32(y).u8(kind).raw(&caller).finish();
            env.emit(b"place", &event);
            Ok(region.blocks.to_le_bytes().to_vec())
        }
        0x02 => {
            let (x, y) = (r.u32()?, r.u32()?);
            r.end()?;
            let (rx, ry) = config.region_of(x, y)?;
            let key = block_key(x, y);
            let block = env.get(&key).ok_or("no block there")?;
            let placer = block.get(1..33).ok_or("corrupt block")?;
            let mut region = load_region(env, rx, ry)?;
            let allowed = region.owner == caller || (region.owner == NOBODY && placer == caller);
            if !allowed {
                return Err("not your block");
            }
            env.remove(&key);
            region.blocks = region.blocks.checked_sub(1).ok_or("corrupt region")?;
            store_region(env, rx, ry, &region);
            env.emit(
                b"remove",
                &Writer::new().u32(x).u32(y).raw(&caller).finish(),
            );
            Ok(region.blocks.to_le_bytes().to_vec())
        }
        0x03 => {
            let (rx, ry) = (r.u16()?, r.u16()?);
            r.end()?;
            config.check_region(rx, ry)?;
            let mut region = load_region(env, rx, ry)?;
            if region.owner != NOBODY {
                return Err("region already owned");
            }
            charge(env, &config, &caller, config.claim_price)?;
            region.owner = caller;
            store_region(env, rx, ry, &region);
            env.emit(
                b"claim",
                &Writer::new().u16(rx).u16(ry).raw(&caller).finish(),
            );
            Ok(Vec::new())
        }
        0x04 => {
            let (rx, ry) = (r.u16()?, r.u16()?);
            r.end()?;
            config.check_region(rx, ry)?;
            let mut region = load_region(env, rx, ry)?;
            if region.owner != caller {
                return Err("not your region");
            }
            region.owner = NOBODY;
            store_region(env, rx, ry, &region);
            env.emit(
                b"release",
                &Writer::new().u16(rx).u16(ry).raw(&caller).finish(),
            );
            Ok(Vec::new())
        }
        0x10 => {
            let (x, y) = (r.u32()?, r.u32()?);
            r.end()?;
            config.region_of(x, y)?;
            Ok(env.get(&block_key(x, y)).unwrap_or_default())
        }
        0x11 => {
            let (rx, ry) = (r.u16()?, r.u16()?);
            r.end()?;
            config.check_region(rx, ry)?;
            let region = load_region(env, rx, ry)?;
            Ok(Writer::new().raw(&region.owner).u32(region.blocks).finish())
        }
        _ => Err("unknown op"),
    }
}
