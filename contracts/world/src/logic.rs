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
//! - `0x05` delegate `sequencer[32]` — lets `sequencer` submit the caller's actions in ticks
//!   (all zeros revokes)
//! - `0x06` tick `count u16 (player[32] op u8 fields)*` — a region's tick: every player's actions
//!   (ops `0x01..=0x04` with their fields) in one input → one status byte per action
//!   ([`TICK_OK`], [`TICK_UNAUTHORISED`], [`TICK_UNPAID`], [`TICK_REJECTED`]). The caller must be
//!   each action's player or that player's delegate. Fees are collected *first*, with one token
//!   `collect(treasury, (player, fees)*)` call for the whole tick (each player owes the prices of
//!   all its actions); a player who cannot pay gets its priced actions refused. Then the actions
//!   run in order with the same rules as the single ops; one that breaks a rule is skipped and
//!   its fee kept, like a failed transaction's. Malformed input aborts the whole tick.
//! - `0x10` block `x u32 y u32` → `kind u8 ‖ placer[32]`, or empty
//! - `0x11` region `rx u16 ry u16` → `owner[32] (zeros if none) ‖ blocks u32`
//!
//! State: `cfg` → the init fields; `B‖x u32‖y u32` → `kind ‖ placer`;
//! `R‖rx u16‖ry u16` → `owner[32] ‖ blocks u32` (absent = unowned and empty);
//! `D‖player` → the player's delegate.

use alloc::vec::Vec;

use crate::codec::{Fixed, Reader, Writer};
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

#[derive(Clone, Copy)]
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

/// A region record is `owner[32] ‖ blocks u32`.
const REGION_BYTES: usize = 36;

/// A block record is `kind u8 ‖ placer[32]`.
const BLOCK_BYTES: usize = 33;

fn load_region<E: Env>(env: &E, rx: u16, ry: u16) -> Result<Region> {
    let mut bytes = [0; REGION_BYTES];
    match env.get_into(&region_key(rx, ry), &mut bytes) {
        None => Ok(Region {
            owner: NOBODY,
            blocks: 0,
        }),
        Some(REGION_BYTES) => {
            let mut r = Reader::new(&bytes);
            Ok(Region {
                owner: r.id()?,
                blocks: r.u32()?,
            })
        }
        Some(_) => Err("corrupt region"),
    }
}

fn store_region<E: Env>(env: &mut E, rx: u16, ry: u16, region: &Region) {
    let key = region_key(rx, ry);
    if region.owner == NOBODY && region.blocks == 0 {
        env.remove(&key);
    } else {
        let record = Fixed::<REGION_BYTES>::new()
            .raw(&region.owner)
            .u32(region.blocks);
        env.set(&key, record.as_slice());
    }
}

/// Where an action reads and writes region records.
///
/// A single-action input goes straight to state. A tick reads each region it touches once and
/// keeps it in memory, writing the changed ones back once at the end, in order of first use:
/// many players building in one region then cost one read and one write of its record, not one
/// per action. The resulting state is the same (only the last write of a key survives a tick).
struct Regions {
    /// `None` = no cache (single actions); otherwise `(rx, ry, region, changed)`.
    cache: Option<Vec<(u16, u16, Region, bool)>>,
}

impl Regions {
    fn direct() -> Self {
        Self { cache: None }
    }

    fn cached() -> Self {
        Self {
            cache: Some(Vec::new()),
        }
    }

    fn load<E: Env>(&mut self, env: &E, rx: u16, ry: u16) -> Result<Region> {
        let Some(cache) = self.cache.as_mut() else {
            return load_region(env, rx, ry);
        };
        if let Some((.., region, _)) = cache.iter().find(|(x, y, ..)| (*x, *y) == (rx, ry)) {
            return Ok(*region);
        }
        let region = load_region(env, rx, ry)?;
        cache.push((rx, ry, region, false));
        Ok(region)
    }

    fn store<E: Env>(&mut self, env: &mut E, rx: u16, ry: u16, region: Region) {
        let Some(cache) = self.cache.as_mut() else {
            return store_region(env, rx, ry, &region);
        };
        match cache.iter_mut().find(|(x, y, ..)| (*x, *y) == (rx, ry)) {
            Some(entry) => *entry = (rx, ry, region, true),
            None => cache.push((rx, ry, region, true)),
        }
    }

    /// Writes the changed regions back (a tick's end).
    fn flush<E: Env>(self, env: &mut E) {
        for (rx, ry, region, changed) in self.cache.into_iter().flatten() {
            if changed {
                store_region(env, rx, ry, &region);
            }
        }
    }
}

/// Makes `payer` pay `amount` to the treasury through the token contract.
fn charge<E: Env>(env: &mut E, config: &Config, payer: &Id, amount: u64) -> Result<()> {
    if amount == 0 {
        return Ok(());
    }
    let input = Fixed::<73>::new()
        .u8(0x03)
        .raw(payer)
        .raw(&config.treasury)
        .u64(amount);
    match env.call(&config.token, input.as_slice(), PAYMENT_FUEL) {
        Ok(_) => Ok(()),
        Err(CallError::Aborted(_)) => Err("payment refused"),
        Err(_) => Err("payment failed"),
    }
}

/// How a priced action is paid for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pay {
    /// By its own token `call` (single-action inputs).
    Call,
    /// Already, by the tick's one `collect` call.
    Prepaid,
}

/// One player action; the same in a single-action input and inside a tick.
#[derive(Clone, Copy)]
enum Action {
    Place { x: u32, y: u32, kind: u8 },
    Remove { x: u32, y: u32 },
    Claim { rx: u16, ry: u16 },
    Release { rx: u16, ry: u16 },
}

impl Action {
    /// The fields of action `op` (`0x01..=0x04`).
    fn parse(op: u8, r: &mut Reader<'_>) -> Result<Self> {
        Ok(match op {
            0x01 => Self::Place {
                x: r.u32()?,
                y: r.u32()?,
                kind: r.u8()?,
            },
            0x02 => Self::Remove {
                x: r.u32()?,
                y: r.u32()?,
            },
            0x03 => Self::Claim {
                rx: r.u16()?,
                ry: r.u16()?,
            },
            0x04 => Self::Release {
                rx: r.u16()?,
                ry: r.u16()?,
            },
            _ => return Err("unknown action"),
        })
    }

    /// What the action costs its player.
    fn price(&self, config: &Config) -> u64 {
        match self {
            Self::Place { .. } => config.block_price,
            Self::Claim { .. } => config.claim_price,
            Self::Remove { .. } | Self::Release { .. } => 0,
        }
    }

    /// Runs the action for `who`. Every check comes before the first write, so a failed action
    /// leaves no trace (inside a tick nothing else would undo it). Returns the single-action
    /// op's output: the region's block count for place and remove, nothing otherwise.
    fn run<E: Env>(
        self,
        env: &mut E,
        config: &Config,
        regions: &mut Regions,
        who: &Id,
        pay: Pay,
    ) -> Result<Option<u32>> {
        match self {
            Self::Place { x, y, kind } => {
                if kind == 0 {
                    return Err("kind 0 is air");
                }
                let (rx, ry) = config.region_of(x, y)?;
                let mut region = regions.load(env, rx, ry)?;
                if region.owner != NOBODY && region.owner != *who {
                    return Err("region owned by another player");
                }
                let key = block_key(x, y);
                if env.get_into(&key, &mut []).is_some() {
                    return Err("cell occupied");
                }
                region.blocks = region.blocks.checked_add(1).ok_or("region full")?;
                if pay == Pay::Call {
                    charge(env, config, who, config.block_price)?;
                }
                let blocks = region.blocks;
                env.set(
                    &key,
                    Fixed::<BLOCK_BYTES>::new().u8(kind).raw(who).as_slice(),
                );
                regions.store(env, rx, ry, region);
                let event = Fixed::<41>::new().u32(x).u32(y).u8(kind).raw(who);
                env.emit(b"place", event.as_slice());
                Ok(Some(blocks))
            }
            Self::Remove { x, y } => {
                let (rx, ry) = config.region_of(x, y)?;
                let key = block_key(x, y);
                let mut block = [0; BLOCK_BYTES];
                match env.get_into(&key, &mut block) {
                    None => return Err("no block there"),
                    Some(BLOCK_BYTES) => {}
                    Some(_) => return Err("corrupt block"),
                }
                let placer = &block[1..];
                let mut region = regions.load(env, rx, ry)?;
                let allowed = region.owner == *who || (region.owner == NOBODY && placer == who);
                if !allowed {
                    return Err("not your block");
                }
                region.blocks = region.blocks.checked_sub(1).ok_or("corrupt region")?;
                let blocks = region.blocks;
                env.remove(&key);
                regions.store(env, rx, ry, region);
                let event = Fixed::<40>::new().u32(x).u32(y).raw(who);
                env.emit(b"remove", event.as_slice());
                Ok(Some(blocks))
            }
            Self::Claim { rx, ry } => {
                config.check_region(rx, ry)?;
                let mut region = regions.load(env, rx, ry)?;
                if region.owner != NOBODY {
                    return Err("region already owned");
                }
                if pay == Pay::Call {
                    charge(env, config, who, config.claim_price)?;
                }
                region.owner = *who;
                regions.store(env, rx, ry, region);
                let event = Fixed::<36>::new().u16(rx).u16(ry).raw(who);
                env.emit(b"claim", event.as_slice());
                Ok(None)
            }
            Self::Release { rx, ry } => {
                config.check_region(rx, ry)?;
                let mut region = regions.load(env, rx, ry)?;
                if region.owner != *who {
                    return Err("not your region");
                }
                region.owner = NOBODY;
                regions.store(env, rx, ry, region);
                let event = Fixed::<36>::new().u16(rx).u16(ry).raw(who);
                env.emit(b"release", event.as_slice());
                Ok(None)
            }
        }
    }
}

fn delegate_key(player: &Id) -> [u8; 33] {
    let mut k = [b'D'; 33];
    k[1..].copy_from_slice(player);
    k
}

/// Tick action statuses (one output byte per action).
pub const TICK_OK: u8 = 0;
/// The tick's caller is neither the player nor the player's delegate.
pub const TICK_UNAUTHORISED: u8 = 1;
/// The player's fees for the tick could not be collected.
pub const TICK_UNPAID: u8 = 2;
/// The action broke a rule (occupied cell, someone else's region, …); its fee is kept.
pub const TICK_REJECTED: u8 = 3;

/// A player's standing in one tick: authorised, fees owed, fees collected.
struct Payer {
    id: Id,
    authorised: bool,
    owed: u64,
    paid: bool,
}

/// `0x06` tick: see the module docs.
fn tick<E: Env>(env: &mut E, config: &Config, r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let count = r.u16()?;
    let mut actions = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let player = r.id()?;
        let op = r.u8()?;
        actions.push((player, Action::parse(op, r)?));
    }
    r.end()?;
    let caller = env.caller();
    // Players in order of first appearance, so the payment list is deterministic.
    let mut payers: Vec<Payer> = Vec::with_capacity(actions.len());
    let mut slots = Vec::with_capacity(actions.len());
    for (player, action) in &actions {
        // Ids that differ usually differ in their first bytes: compare those first (one 8-byte
        // load instead of four per payer in the interpreter).
        let slot = match payers
            .iter()
            .position(|p| p.id[..8] == player[..8] && p.id == *player)
        {
            Some(slot) => slot,
            None => {
                let authorised =
                    *player == caller || env.get_array::<32>(&delegate_key(player)) == Some(caller);
                payers.push(Payer {
                    id: *player,
                    authorised,
                    owed: 0,
                    paid: true,
                });
                payers.len() - 1
            }
        };
        let payer = &mut payers[slot];
        if payer.authorised {
            payer.owed = payer
                .owed
                .checked_add(action.price(config))
                .ok_or("fee overflow")?;
        }
        slots.push(slot);
    }
    collect_fees(env, config, &mut payers)?;
    let mut regions = Regions::cached();
    let mut status = Vec::with_capacity(actions.len());
    for ((player, action), slot) in actions.into_iter().zip(slots) {
        let payer = &payers[slot];
        status.push(if !payer.authorised {
            TICK_UNAUTHORISED
        } else if !payer.paid && action.price(config) > 0 {
            TICK_UNPAID
        } else if action
            .run(env, config, &mut regions, &player, Pay::Prepaid)
            .is_ok()
        {
            TICK_OK
        } else {
            TICK_REJECTED
        });
    }
    regions.flush(env);
    Ok(status)
}

/// Collects every payer's fees with one token `collect` call; marks who could not pay.
fn collect_fees<E: Env>(env: &mut E, config: &Config, payers: &mut [Payer]) -> Result<()> {
    let owing = payers.iter().filter(|p| p.owed > 0).count();
    if owing == 0 {
        return Ok(());
    }
    let count = u16::try_from(owing).map_err(|_| "too many payers")?;
    let mut input = Writer::with_capacity(35 + 40 * owing)
        .u8(0x05)
        .raw(&config.treasury)
        .u16(count);
    for payer in payers.iter().filter(|p| p.owed > 0) {
        input = input.raw(&payer.id).u64(payer.owed);
    }
    // The whole input's fuel bounds the call; `collect` is linear in the payers.
    let status = match env.call(&config.token, &input.finish(), u64::MAX) {
        Ok(status) if status.len() == owing => status,
        _ => return Err("payment failed"),
    };
    let owing = payers.iter_mut().filter(|p| p.owed > 0);
    for (payer, paid) in owing.zip(status) {
        payer.paid = paid == 0;
    }
    Ok(())
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
        0x01..=0x04 => {
            let action = Action::parse(op, &mut r)?;
            r.end()?;
            let blocks = action.run(env, &config, &mut Regions::direct(), &caller, Pay::Call)?;
            Ok(blocks.map_or_else(Vec::new, |b| b.to_le_bytes().to_vec()))
        }
        0x05 => {
            let sequencer = r.id()?;
            r.end()?;
            if sequencer == NOBODY {
                env.remove(&delegate_key(&caller));
            } else {
                env.set(&delegate_key(&caller), &sequencer);
            }
            Ok(Vec::new())
        }
        0x06 => tick(env, &config, &mut r),
        0x10 => {
            let (x, y) = (r.u32()?, r.u32()?);
            r.end()?;
            config.region_of(x, y)?;
            let mut block = [0; BLOCK_BYTES];
            match env.get_into(&block_key(x, y), &mut block) {
                None => Ok(Vec::new()),
                Some(BLOCK_BYTES) => Ok(block.to_vec()),
                Some(_) => Err("corrupt block"),
            }
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
