//! Contract host benchmark: prints the figures issue 3 asks for, next to their targets.
//!
//! Run `scripts/build-contracts.sh` first, then `cargo bench -p meshwork --bench contract`.
//!
//! - a world-contract call (a block placement that pays through the token contract) — time, fuel;
//! - a world tick of a 16-player region (16 such inputs, one transition) on wasmi vs the *same
//!   contract source* compiled natively against an in-memory `Env` (target: ≤ 10×);
//! - instantiation of the world module from a cached module (paid by every call);
//! - Merkle root update per write;
//! - transitions verified per second per core (a referee's fork + re-execute + compare;
//!   target: ≥ 10,000 world ticks per second).

extern crate alloc;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use meshwork::proto::contract::{Input, MerkleMap, TransitionResult};

// The contract sources, compiled natively: the same files the wasm contracts are built from.
#[path = "../../contracts/sdk/src/codec.rs"]
#[allow(dead_code)]
mod codec;
#[path = "../../contracts/sdk/src/env.rs"]
#[allow(dead_code)]
mod env;
#[path = "../../contracts/token/src/logic.rs"]
#[allow(dead_code)]
mod token_logic;
#[path = "../../contracts/world/src/logic.rs"]
#[allow(dead_code)]
mod world_logic;
#[path = "../../tests/it/contract/world_scenario.rs"]
#[allow(dead_code)]
mod world_scenario;

use env::{CallError, Env, Id};

fn built(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/target/wasm")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/build-contracts.sh first",
            path.display()
        )
    })
}

/// Runs `f` repeatedly for about `budget` and returns the mean time per run.
fn time_per_run(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < budget {
        f();
        runs += 1;
    }
    start.elapsed() / runs.max(1)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------------------------
// The native "host": contract states in BTreeMaps, nested calls dispatched to the native token.

#[derive(Clone, Default)]
struct NativeChain {
    states: BTreeMap<Id, BTreeMap<Vec<u8>, Vec<u8>>>,
    events: usize,
    token: Id,
}

struct NativeEnv<'a> {
    chain: &'a mut NativeChain,
    me: Id,
    caller: Id,
    tick: u64,
}

impl Env for NativeEnv<'_> {
    fn caller(&self) -> Id {
        self.caller
    }
    fn self_id(&self) -> Id {
        self.me
    }
    fn tick(&self) -> u64 {
        self.tick
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.chain.states.get(&self.me)?.get(key).cloned()
    }
    fn set(&mut self, key: &[u8], value: &[u8]) {
        let state = self.chain.states.entry(self.me).or_default();
        state.insert(key.to_vec(), value.to_vec());
    }
    fn remove(&mut self, key: &[u8]) -> bool {
        let state = self.chain.states.entry(self.me).or_default();
        state.remove(key).is_some()
    }
    fn emit(&mut self, topic: &[u8], data: &[u8]) {
        black_box((topic, data));
        self.chain.events += 1;
    }
    fn call(&mut self, contract: &Id, input: &[u8], _fuel: u64) -> Result<Vec<u8>, CallError> {
        if *contract != self.chain.token {
            return Err(CallError::NoContract);
        }
        let mut env = NativeEnv {
            chain: self.chain,
            me: *contract,
            caller: self.me,
            tick: self.tick,
        };
        token_logic::call(&mut env, input).map_err(|m| CallError::Aborted(m.as_bytes().to_vec()))
    }
}

impl NativeChain {
    fn run(&mut self, input: &Input, world: Id) -> Result<Vec<u8>, &'static str> {
        let contract = input.contract.0;
        let mut env = NativeEnv {
            chain: self,
            me: contract,
            caller: input.caller.0,
            tick: input.tick.0,
        };
        if contract == world {
            world_logic::call(&mut env, &input.data)
        } else {
            token_logic::call(&mut env, &input.data)
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// 16 inputs: each player places (or removes) a block on its own empty cell of an unowned region.
fn tick_inputs(w: &world_scenario::World, op: u8) -> Vec<Input> {
    let side = u32::from(world_scenario::REGIONS) * u32::from(world_scenario::REGION_SIZE);
    let mut cells = Vec::new();
    'search: for y in 0..side {
        for x in 0..side {
            let size = u32::from(world_scenario::REGION_SIZE);
            let mut region_key = vec![b'R'];
            region_key.extend_from_slice(&((x / size) as u16).to_le_bytes());
            region_key.extend_from_slice(&((y / size) as u16).to_le_bytes());
            let owned = w
                .host
                .read(&w.world, &region_key)
                .expect("world exists")
                .is_some_and(|r| r[..32] != [0; 32]);
            let mut block_key = vec![b'B'];
            block_key.extend_from_slice(&x.to_le_bytes());
            block_key.extend_from_slice(&y.to_le_bytes());
            let empty = w
                .host
                .read(&w.world, &block_key)
                .expect("world exists")
                .is_none();
            if !owned && empty {
                cells.push((x, y));
                if cells.len() == usize::from(world_scenario::PLAYERS) {
                    break 'search;
                }
            }
        }
    }
    cells
        .iter()
        .enumerate()
        .map(|(i, (x, y))| {
            let mut data = vec![op];
            data.extend_from_slice(&x.to_le_bytes());
            data.extend_from_slice(&y.to_le_bytes());
            if op == 0x01 {
                data.push(1);
            }
            world_scenario::input(w.world, world_scenario::player(i as u8), 1_000, data)
        })
        .collect()
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("MESHWORK_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let (token_wasm, world_wasm) = (built("token"), built("world"));
    let mut w = world_scenario::setup(&token_wasm, &world_wasm);
    // A lived-in world: 3,000 random inputs first (about a thousand blocks), without region
    // claims so that every player can still build anywhere.
    let mut rng = world_scenario::Rng::new(7);
    let warmup: Vec<Input> = (0..3_000)
        .map(|i| world_scenario::random_input(&w, &mut rng, i))
        .filter(|i| !(i.contract == w.world && i.data[0] == 0x03))
        .collect();
    for chunk in warmup.chunks(16) {
        w.host.apply_transition(chunk);
    }
    let world_entries = w.host.export_state(&w.world).expect("world exists").len();
    let places = tick_inputs(&w, 0x01);
    let removes: Vec<Input> = places
        .iter()
        .map(|i| {
            let mut input = i.clone();
            input.data[0] = 0x02;
            input.data.truncate(9);
            input
        })
        .collect();
    assert_eq!(places.len(), 16, "found 16 free cells");
    println!(
        "contract host benchmark (wasmi 2.0.0, portable dispatch; world state: {world_entries} entries)"
    );
    println!();

    // 1. One world call: place a block, paying through the token (nested call).
    let probe = w.host.clone().apply(&places[0]);
    assert!(probe.result.is_ok(), "{:?}", probe.result);
    let mut host = w.host.clone();
    let call_time = time_per_run(budget, || {
        let r = host.apply(&places[0]);
        black_box(&r);
        let r = host.apply(&removes[0]);
        black_box(&r);
    });
    let mut tmp = w.host.clone();
    tmp.apply(&places[0]);
    let remove_receipt = tmp.apply(&removes[0]);
    let place_time = {
        let host = w.host.clone();
        time_per_run(budget, || {
            let mut fork = host.clone();
            black_box(fork.apply(&places[0]));
        }) - time_per_run(budget / 4, || {
            black_box(host.clone());
        })
    };
    println!("world call: place a block + pay via token `call`");
    println!(
        "  time      {:>8.1} µs/call (apply + commit roots)   fuel {:>7} (remove: {} fuel)",
        us(place_time),
        probe.fuel_used.0,
        remove_receipt.fuel_used.0
    );
    println!("  place+remove pair {:>8.1} µs", us(call_time));

    // 2. World tick of a 16-player region, wasmi vs native.
    let mut host = w.host.clone();
    if std::env::var("MESHWORK_BENCH_PROFILE_TICK").is_ok() {
        // For `perf record`: only the wasmi world tick, for a while.
        let start = Instant::now();
        while start.elapsed() < budget {
            black_box(host.apply_transition(&places));
            black_box(host.apply_transition(&removes));
        }
        return;
    }
    let wasm_tick = time_per_run(budget, || {
        let a: TransitionResult = host.apply_transition(&places);
        let b = host.apply_transition(&removes);
        black_box((a, b));
    });
    let check = w.host.clone().apply_transition(&places);
    assert!(check.receipts.iter().all(|r| r.result.is_ok()));
    let tick_fuel = check.fuel_used.0;

    let mut native = NativeChain {
        token: w.token.0,
        ..NativeChain::default()
    };
    for id in [w.token, w.world] {
        let entries = w.host.export_state(&id).expect("contract exists");
        native.states.insert(id.0, entries.into_iter().collect());
    }
    let world_id = w.world.0;
    for i in places.iter().chain(&removes) {
        native
            .run(i, world_id)
            .expect("native logic accepts the same inputs");
    }
    let native_tick = time_per_run(budget, || {
        for i in &places {
            black_box(native.run(i, world_id)).ok();
        }
        for i in &removes {
            black_box(native.run(i, world_id)).ok();
        }
    });
    let ratio = wasm_tick.as_secs_f64() / native_tick.as_secs_f64();
    println!();
    println!("world tick, 16-player region (16 place inputs + 16 remove inputs, 2 transitions)");
    println!(
        "  wasmi     {:>8.1} µs  = {:>6.1} µs per tick   ({} fuel per place tick)",
        us(wasm_tick),
        us(wasm_tick) / 2.0,
        tick_fuel
    );
    println!(
        "  native    {:>8.1} µs  (same contract source, BTreeMap state, no Merkle, no sandbox)",
        us(native_tick)
    );
    println!(
        "  ratio     {ratio:>8.1}×  wasmi host / native logic          target ≤ 10×  {}",
        if ratio <= 10.0 { "MET" } else { "MISSED" }
    );

    // 3. Instantiation from a cached module.
    let world_code = w.host.code_of(&w.world).expect("world exists");
    let token_code = w.host.code_of(&w.token).expect("token exists");
    let instantiate = |code| {
        let one = time_per_run(budget / 4, || {
            w.host.bench_instantiate(&code, 1).expect("instantiates");
        });
        let many = time_per_run(budget / 4, || {
            w.host.bench_instantiate(&code, 33).expect("instantiates");
        });
        let per_instance = many.saturating_sub(one) / 32;
        (per_instance, one.saturating_sub(per_instance))
    };
    let (inst_world, store_setup) = instantiate(world_code);
    let (inst_token, _) = instantiate(token_code);
    println!();
    println!("instantiation from a cached module (every call gets a fresh instance)");
    println!(
        "  world     {:>8.2} µs per instance ({} bytes of wasm, 1 page of memory)",
        us(inst_world),
        world_wasm.len()
    );
    println!(
        "  token     {:>8.2} µs per instance ({} bytes of wasm)",
        us(inst_token),
        token_wasm.len()
    );
    println!(
        "  store     {:>8.2} µs per store + host functions (one per batch of inputs)",
        us(store_setup)
    );

    // 4. Merkle root update per write.
    println!();
    println!("Merkle root update per write (sha256 sparse tree, 42-byte values)");
    for n in [1_000u32, 100_000] {
        let mut map = MerkleMap::new();
        for i in 0..n {
            map.insert(&block_key(i), &[7u8; 42]);
        }
        map.commit();
        let mut i = 0u32;
        let single = time_per_run(budget / 2, || {
            i = i.wrapping_add(7919) % n;
            map.insert(&block_key(i), &i.to_le_bytes().repeat(10));
            black_box(map.commit());
        });
        let batched = time_per_run(budget / 2, || {
            for _ in 0..16 {
                i = i.wrapping_add(7919) % n;
                map.insert(&block_key(i), &(i ^ 1).to_le_bytes().repeat(10));
            }
            black_box(map.commit());
        }) / 16;
        println!(
            "  {n:>7} entries: {:>6.2} µs (write + root), {:>6.2} µs per write when 16 share a root",
            us(single),
            us(batched)
        );
    }

    // 5. Referee throughput.
    let claimed = w.host.clone().apply_transition(&places);
    assert!(w.host.verify_transition(&places, &claimed));
    let verify = time_per_run(budget, || {
        assert!(w.host.verify_transition(&places, &claimed));
    });
    let per_sec = 1.0 / verify.as_secs_f64();
    println!();
    println!("referee: verify a 16-player world tick (fork + re-execute 16 inputs + compare)");
    println!(
        "  {:>8.1} µs per tick = {:>8.0} ticks/s per core        target ≥ 10,000/s  {}",
        us(verify),
        per_sec,
        if per_sec >= 10_000.0 { "MET" } else { "MISSED" }
    );
    let single = vec![places[0].clone()];
    let claimed_one = w.host.clone().apply_transition(&single);
    let verify_one = time_per_run(budget / 2, || {
        assert!(w.host.verify_transition(&single, &claimed_one));
    });
    println!(
        "  {:>8.1} µs per single-input transition = {:>8.0} transitions/s per core",
        us(verify_one),
        1.0 / verify_one.as_secs_f64()
    );
}

fn block_key(i: u32) -> Vec<u8> {
    let mut k = vec![b'B'];
    k.extend_from_slice(&i.to_le_bytes());
    k.extend_from_slice(&(i / 64).to_le_bytes());
    k
}
