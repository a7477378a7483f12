//! Contract host: the built contracts (pinned code hashes), composition and rollback, every bad
//! module or input the issue lists (each a typed error, no state change, host still usable),
//! proofs, and determinism of 10,000 random world inputs natively and under Node.
//!
//! The Rust contracts must be built first: `scripts/build-contracts.sh` (CI runs it before the
//! tests). WAT edge cases in `assets/contracts/` are compiled here with the `wat` crate.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly on the first surprise"
)]

mod reuse;
mod world_scenario;

use std::path::PathBuf;

use meshwork::proto::contract::{
    Address, CALL_ABORTED, CALL_OUT_OF_FUEL, CALL_TRAPPED, CodeHash, ConsensusParams,
    ContractError, ContractHost, ContractId, Fuel, Input, Receipt, Tick, TrapKind,
};

/// sha256 of each built contract. A change here means the contract's bytes changed: either its
/// source (update the pin deliberately) or the build stopped being reproducible (a bug).
const TOKEN_HASH: &str = "c27eae07c7d99fb72dd59e00448feacced834d4ec639cdc75311033e3797dd9c";
const COUNTER_HASH: &str = "7fb929ce072d4bda0eef9b078d6facf5e024311aea3382db7724393433dcbd0a";
const WORLD_HASH: &str = "08d25cf041f1d936376030548b89bc6bd21dd1bc41204eb3efd1c6cda4385a5e";

const FUEL: Fuel = Fuel(5_000_000);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A contract built by `scripts/build-contracts.sh`.
pub(crate) fn built(name: &str) -> Vec<u8> {
    let path = repo()
        .join("contracts/target/wasm")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\ncontract `{name}` is not built: run `scripts/build-contracts.sh` first",
            path.display()
        )
    })
}

/// A WAT edge-case contract from `assets/contracts/`.
fn wat(name: &str) -> Vec<u8> {
    let path = repo().join("assets/contracts").join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn me() -> Address {
    Address([0x11; 32])
}

fn call(contract: ContractId, caller: Address, data: Vec<u8>) -> Input {
    Input {
        contract,
        caller,
        tick: Tick(7),
        fuel_limit: FUEL,
        data,
    }
}

/// A host with the counter contract, for "still usable afterwards" checks.
fn host_with_counter() -> (ContractHost, ContractId) {
    let mut host = ContractHost::new(ConsensusParams::default()).unwrap();
    let code = host.load_code(&built("counter")).unwrap();
    let (id, _) = host
        .instantiate(code, me(), &[0; 32], &[], Tick(0), FUEL)
        .unwrap();
    (host, id)
}

fn instantiate(host: &mut ContractHost, wasm: &[u8], salt: u8) -> ContractId {
    let code = host.load_code(wasm).unwrap();
    host.instantiate(code, me(), &[salt; 32], &[], Tick(0), FUEL)
        .unwrap()
        .0
}

fn increment(by: u64) -> Vec<u8> {
    let mut v = vec![0x01];
    v.extend_from_slice(&by.to_le_bytes());
    v
}

/// The host works after whatever just happened: the counter still counts.
fn assert_usable(host: &mut ContractHost, counter: ContractId) {
    let before = u64::from_le_bytes(
        host.apply(&call(counter, me(), vec![0x02]))
            .output()
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let receipt = host.apply(&call(counter, me(), increment(1)));
    assert_eq!(receipt.output().unwrap(), (before + 1).to_le_bytes());
}

/// Runs `input`, expecting `expected`, no state change, burned fuel reported, host usable.
fn assert_fails_cleanly(
    host: &mut ContractHost,
    counter: ContractId,
    input: Input,
    expected: ContractError,
) {
    let root = host.root();
    let receipt = host.apply(&input);
    assert_eq!(receipt.result, Err(expected));
    assert!(receipt.events.is_empty());
    assert_eq!(host.root(), root, "a failed input must not change state");
    assert!(receipt.fuel_used <= input.fuel_limit);
    assert_usable(host, counter);
}

fn u64_out(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn built_contracts_match_pinned_code_hashes() {
    // And their instances are reused (every mutable global exported, no table or segment ops).
    let mut host = ContractHost::new(ConsensusParams::default()).unwrap();
    for name in ["token", "counter", "world"] {
        let code = host.load_code(&built(name)).unwrap();
        assert!(host.reuses_instances(&code), "{name} is not resettable");
    }
    for (name, pinned) in [
        ("token", TOKEN_HASH),
        ("counter", COUNTER_HASH),
        ("world", WORLD_HASH),
    ] {
        assert_eq!(
            CodeHash::of(&built(name)).to_string(),
            pinned,
            "code hash of {name}.wasm changed: rebuild with scripts/build-contracts.sh, and if the \
             contract's source changed on purpose, update the pin"
        );
    }
}

#[test]
fn code_with_another_hash_is_refused() {
    let mut host = ContractHost::new(ConsensusParams::default()).unwrap();
    let counter = built("counter");
    let mut tampered = counter.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let expected = CodeHash::of(&counter);
    assert_eq!(
        host.load_code_expecting(&tampered, expected),
        Err(ContractError::CodeHashMismatch {
            expected,
            actual: CodeHash::of(&tampered)
        })
    );
    assert!(!host.has_code(&CodeHash::of(&tampered)));
    assert_eq!(host.load_code_expecting(&counter, expected), Ok(expected));
}

#[test]
fn counter_counts_per_caller_with_tick_and_events() {
    let (mut host, counter) = host_with_counter();
    let other = Address([0x22; 32]);
    assert_eq!(
        u64_out(
            host.apply(&call(counter, me(), increment(5)))
                .output()
                .unwrap()
        ),
        5
    );
    let receipt = host.apply(&call(counter, other, increment(2)));
    assert_eq!(u64_out(receipt.output().unwrap()), 7);
    assert_eq!(receipt.events.len(), 1);
    assert_eq!(receipt.events[0].topic, b"inc");
    assert_eq!(receipt.events[0].contract, counter);
    assert_eq!(&receipt.events[0].data[..32], &other.0);
    assert_eq!(&receipt.events[0].data[40..], &7u64.to_le_bytes(), "tick 7");
    let mut get_of = vec![0x03];
    get_of.extend_from_slice(&me().0);
    assert_eq!(
        u64_out(host.apply(&call(counter, other, get_of)).output().unwrap()),
        1
    );
    // Checked arithmetic: overflow aborts and leaves the total alone.
    let root = host.root();
    let receipt = host.apply(&call(counter, me(), increment(u64::MAX)));
    assert_eq!(
        receipt.result,
        Err(ContractError::Aborted {
            message: b"counter overflow".to_vec()
        })
    );
    assert_eq!(host.root(), root);
}

fn token_op(op: u8, ids: &[&Address], amount: Option<u64>) -> Vec<u8> {
    let mut v = vec![op];
    for id in ids {
        v.extend_from_slice(&id.0);
    }
    if let Some(a) = amount {
        v.extend_from_slice(&a.to_le_bytes());
    }
    v
}

#[test]
fn token_transfers_allowances_and_refuses_overdrafts() {
    let mut host = ContractHost::new(ConsensusParams::default()).unwrap();
    let code = host.load_code(&built("token")).unwrap();
    let (token, _) = host
        .instantiate(code, me(), &[0; 32], &1_000u64.to_le_bytes(), Tick(0), FUEL)
        .unwrap();
    let (alice, bob) = (Address([0xa1; 32]), Address([0xb0; 32]));
    let balance = |host: &mut ContractHost, who: &Address| {
        u64_out(
            host.apply(&call(token, me(), token_op(0x10, &[who], None)))
                .output()
                .unwrap(),
        )
    };
    assert!(
        host.apply(&call(token, me(), token_op(0x01, &[&alice], Some(300))))
            .result
            .is_ok()
    );
    assert_eq!(balance(&mut host, &me()), 700);
    assert_eq!(balance(&mut host, &alice), 300);
    // Overdraft aborts with the token's message and changes nothing.
    let root = host.root();
    let r = host.apply(&call(token, alice, token_op(0x01, &[&bob], Some(301))));
    assert_eq!(
        r.result,
        Err(ContractError::Aborted {
            message: b"insufficient balance".to_vec()
        })
    );
    assert_eq!(host.root(), root);
    // transfer_from needs an allowance, and spends it.
    let r = host.apply(&call(token, bob, token_op(0x03, &[&alice, &bob], Some(10))));
    assert!(r.result.is_err());
    assert!(
        host.apply(&call(token, alice, token_op(0x02, &[&bob], Some(50))))
            .result
            .is_ok()
    );
    let r = host.apply(&call(token, bob, token_op(0x03, &[&alice, &bob], Some(40))));
    assert!(r.result.is_ok());
    assert_eq!(r.events[0].topic, b"transfer");
    assert_eq!(balance(&mut host, &bob), 40);
    let left = host.apply(&call(token, me(), token_op(0x11, &[&alice, &bob], None)));
    assert_eq!(u64_out(left.output().unwrap()), 10);
    // Only the admin mints; the supply is checked.
    assert!(
        host.apply(&call(token, alice, token_op(0x04, &[&alice], Some(1))))
            .result
            .is_err()
    );
    let r = host.apply(&call(token, me(), token_op(0x04, &[&me()], Some(u64::MAX))));
    assert_eq!(
        r.result,
        Err(ContractError::Aborted {
            message: b"supply overflow".to_vec()
        })
    );
    let supply = host.apply(&call(token, me(), vec![0x12]));
    assert_eq!(u64_out(supply.output().unwrap()), 1_000);
}

fn place(x: u32, y: u32, kind: u8) -> Vec<u8> {
    let mut v = vec![0x01];
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    v.push(kind);
    v
}

fn cell(op: u8, x: u32, y: u32) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    v
}

fn region(op: u8, rx: u16, ry: u16) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&rx.to_le_bytes());
    v.extend_from_slice(&ry.to_le_bytes());
    v
}

/// A region's tick as one input: the sequencer submits every player's actions, the fees are
/// collected by one token `collect` call, and each action gets a status byte.
#[test]
fn world_tick_runs_every_players_actions_with_one_token_call() {
    use world_scenario::{BLOCK_PRICE, admin, player, sequencer, tick_input};
    let mut w = world_scenario::setup(&built("token"), &built("world"));
    let balance = |w: &mut world_scenario::World, who: &Address| {
        let r = w
            .host
            .apply(&call(w.token, admin(), token_op(0x10, &[who], None)));
        u64_out(r.output().unwrap())
    };
    let (p0, p1, p2) = (player(0), player(1), player(2));
    // A stranger who delegated to nobody, and a delegated player with no money.
    let stranger = Address([0x77; 32]);
    let broke = Address([0xee; 32]);
    let mut delegate = vec![0x05];
    delegate.extend_from_slice(&sequencer().0);
    assert!(w.host.apply(&call(w.world, broke, delegate)).result.is_ok());
    let (start0, start1, treasury) = (
        balance(&mut w, &p0),
        balance(&mut w, &p1),
        balance(&mut w, &admin()),
    );
    let actions = vec![
        (p0, place(1, 1, 1)),
        (p1, place(2, 2, 1)),
        (p0, place(3, 3, 2)),
        (p1, place(1, 1, 3)), // occupied by p0's block a moment ago: rejected, fee kept
        (stranger, place(4, 4, 1)),
        (broke, place(5, 5, 1)),
        (p2, cell(0x02, 2, 2)), // p1's block in an unowned region: not p2's to remove
        (p1, cell(0x02, 2, 2)),
    ];
    let r = w.host.apply(&tick_input(&w, 1, &actions));
    assert_eq!(r.output().unwrap(), [0, 0, 0, 3, 1, 2, 3, 0]);
    // One collect call: the token's transfer events come first, one per paying player.
    let topics = event_topics(&r);
    assert_eq!(
        topics,
        vec![
            (w.token, b"transfer".to_vec()),
            (w.token, b"transfer".to_vec()),
            (w.world, b"place".to_vec()),
            (w.world, b"place".to_vec()),
            (w.world, b"place".to_vec()),
            (w.world, b"remove".to_vec()),
        ]
    );
    assert_eq!(balance(&mut w, &p0), start0 - 2 * BLOCK_PRICE);
    assert_eq!(balance(&mut w, &p1), start1 - 2 * BLOCK_PRICE);
    assert_eq!(balance(&mut w, &admin()), treasury + 4 * BLOCK_PRICE);
    let block = |w: &mut world_scenario::World, x, y| {
        w.host
            .apply(&call(w.world, p0, cell(0x10, x, y)))
            .output()
            .unwrap()
            .to_vec()
    };
    assert_eq!(block(&mut w, 1, 1)[0], 1, "p0's block stayed");
    assert_eq!(block(&mut w, 3, 3)[0], 2);
    assert!(block(&mut w, 2, 2).is_empty(), "p1 removed its own block");
    assert!(block(&mut w, 4, 4).is_empty() && block(&mut w, 5, 5).is_empty());
    // Malformed ticks abort as a whole; a player may submit its own actions without a delegate.
    let root = w.host.root();
    let mut bad = tick_input(&w, 2, &[(p0, place(6, 6, 1))]);
    bad.data.push(0);
    assert!(w.host.apply(&bad).result.is_err());
    assert_eq!(w.host.root(), root);
    let own = Input {
        caller: stranger,
        ..tick_input(&w, 2, &[(stranger, region(0x04, 0, 0))])
    };
    assert_eq!(
        w.host.apply(&own).output().unwrap(),
        [3],
        "authorised, but not the stranger's region"
    );
}

#[test]
fn world_charges_blocks_through_the_token_and_enforces_region_ownership() {
    use world_scenario::{BLOCK_PRICE, CLAIM_PRICE, admin, player};
    let mut w = world_scenario::setup(&built("token"), &built("world"));
    let (p0, p1) = (player(0), player(1));
    let balance = |w: &mut world_scenario::World, who: &Address| {
        let r = w
            .host
            .apply(&call(w.token, admin(), token_op(0x10, &[who], None)));
        u64_out(r.output().unwrap())
    };
    let start = balance(&mut w, &p0);
    let treasury = balance(&mut w, &admin());
    let r = w.host.apply(&call(w.world, p0, place(3, 4, 2)));
    assert_eq!(
        r.output().unwrap(),
        1u32.to_le_bytes(),
        "one block in region (0,0)"
    );
    // Events: the token's transfer (nested call) then the world's place.
    let topics = event_topics(&r);
    assert_eq!(
        topics,
        vec![
            (w.token, b"transfer".to_vec()),
            (w.world, b"place".to_vec())
        ]
    );
    assert_eq!(balance(&mut w, &p0), start - BLOCK_PRICE);
    assert_eq!(balance(&mut w, &admin()), treasury + BLOCK_PRICE);
    let block = w.host.apply(&call(w.world, p1, cell(0x10, 3, 4)));
    assert_eq!(block.output().unwrap()[0], 2);
    assert_eq!(&block.output().unwrap()[1..], &p0.0);
    // Occupied cell, outside the world, another's block: refused, nothing charged.
    let root = w.host.root();
    for (who, data) in [
        (p1, place(3, 4, 1)),
        (p1, place(64, 0, 1)),
        (p1, cell(0x02, 3, 4)),
    ] {
        assert!(w.host.apply(&call(w.world, who, data)).result.is_err());
    }
    assert_eq!(w.host.root(), root);
    // Claims: p1 claims region (0,0) and may then remove p0's block; p0 may no longer build.
    assert!(
        w.host
            .apply(&call(w.world, p1, region(0x03, 0, 0)))
            .result
            .is_ok()
    );
    assert_eq!(balance(&mut w, &p1), start - CLAIM_PRICE);
    assert!(
        w.host
            .apply(&call(w.world, p0, place(5, 5, 1)))
            .result
            .is_err()
    );
    assert!(
        w.host
            .apply(&call(w.world, p0, region(0x03, 0, 0)))
            .result
            .is_err()
    );
    assert!(
        w.host
            .apply(&call(w.world, p1, cell(0x02, 3, 4)))
            .result
            .is_ok()
    );
    assert!(
        w.host
            .apply(&call(w.world, p1, region(0x04, 0, 0)))
            .result
            .is_ok()
    );
    let r = w.host.apply(&call(w.world, p0, region(0x11, 0, 0)));
    assert_eq!(
        r.output().unwrap(),
        [[0u8; 32].as_slice(), &0u32.to_le_bytes()].concat()
    );
    // A player who cannot pay cannot build: the token aborts, the world aborts, nothing changes.
    let broke = Address([0xee; 32]);
    let root = w.host.root();
    let r = w.host.apply(&call(w.world, broke, place(9, 9, 1)));
    assert_eq!(
        r.result,
        Err(ContractError::Aborted {
            message: b"payment refused".to_vec()
        })
    );
    assert_eq!(w.host.root(), root);
}

#[test]
fn callee_failure_rolls_back_callee_and_keeps_caller() {
    let (mut host, counter) = host_with_counter();
    let proxy = instantiate(&mut host, &wat("proxy"), 1);
    let victim = instantiate(&mut host, &wat("victim"), 2);
    let through = |victim_input: u8, fuel: u64| {
        let mut v = victim.0.to_vec();
        v.extend_from_slice(&fuel.to_le_bytes());
        v.push(victim_input);
        v
    };
    for (mode, fuel, status, return_data) in [
        (1u8, 1_000_000u64, CALL_TRAPPED, &b""[..]),
        (2, 1_000_000, CALL_ABORTED, b"nope"),
        (3, 200_000, CALL_OUT_OF_FUEL, b""),
    ] {
        let victim_root = host.contract_root(&victim).unwrap();
        let r = host.apply(&call(proxy, me(), through(mode, fuel)));
        let out = r.output().unwrap();
        assert_eq!(out[..4], status.to_le_bytes(), "mode {mode}");
        assert_eq!(&out[4..], return_data);
        // The caller's writes before and after the call are kept...
        assert_eq!(host.read(&proxy, b"before").unwrap(), Some(&b"1"[..]));
        assert_eq!(
            host.read(&proxy, b"status").unwrap(),
            Some(&status.to_le_bytes()[..])
        );
        // ...the callee's write and event are gone.
        assert_eq!(host.read(&victim, b"victim").unwrap(), None);
        assert_eq!(host.contract_root(&victim).unwrap(), victim_root);
        assert!(r.events.is_empty(), "the callee's event is rolled back");
        if mode == 3 {
            assert!(
                r.fuel_used.0 > 200_000,
                "the callee's burned budget is charged"
            );
        }
    }
    // A successful callee commits with its caller, caller id = the proxy.
    let r = host.apply(&call(proxy, me(), through(0, 1_000_000)));
    assert_eq!(&r.output().unwrap()[..4], 2i32.to_le_bytes());
    assert_eq!(&r.output().unwrap()[4..], b"ok");
    assert_eq!(
        host.read(&victim, b"victim").unwrap(),
        Some(&b"written"[..])
    );
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].contract, victim);
    assert_usable(&mut host, counter);
}

#[test]
fn reentry_is_refused() {
    let (mut host, counter) = host_with_counter();
    let a = instantiate(&mut host, &wat("proxy"), 1);
    let b = instantiate(&mut host, &wat("proxy"), 2);
    // A calls itself: A traps with a typed error.
    let mut self_call = a.0.to_vec();
    self_call.extend_from_slice(&1_000_000u64.to_le_bytes());
    assert_fails_cleanly(
        &mut host,
        counter,
        call(a, me(), self_call),
        ContractError::Reentry(a),
    );
    // A → B → A: B traps (re-entry), A sees CALL_TRAPPED and keeps going; B's writes are undone.
    let mut inner = a.0.to_vec();
    inner.extend_from_slice(&1_000_000u64.to_le_bytes());
    let mut outer = b.0.to_vec();
    outer.extend_from_slice(&2_000_000u64.to_le_bytes());
    outer.extend_from_slice(&inner);
    let r = host.apply(&call(a, me(), outer));
    assert_eq!(r.output().unwrap()[..4], CALL_TRAPPED.to_le_bytes());
    assert_eq!(host.read(&b, b"before").unwrap(), None);
    assert_eq!(host.read(&a, b"before").unwrap(), Some(&b"1"[..]));
}

#[test]
fn call_depth_is_capped() {
    let params = ConsensusParams {
        call_depth_max: 0,
        ..ConsensusParams::default()
    };
    let mut host = ContractHost::new(params).unwrap();
    let counter_code = host.load_code(&built("counter")).unwrap();
    let (counter, _) = host
        .instantiate(counter_code, me(), &[0; 32], &[], Tick(0), FUEL)
        .unwrap();
    let proxy = instantiate(&mut host, &wat("proxy"), 1);
    let mut data = counter.0.to_vec();
    data.extend_from_slice(&1_000_000u64.to_le_bytes());
    data.extend_from_slice(&increment(1));
    assert_fails_cleanly(
        &mut host,
        counter,
        call(proxy, me(), data),
        ContractError::CallDepthExceeded,
    );
}

#[test]
fn malformed_wasm_is_refused() {
    let (mut host, counter) = host_with_counter();
    let root = host.root();
    let garbage = b"\0asm\x01\0\0\0\x99\x99\x99".to_vec();
    let mut truncated = built("counter");
    truncated.truncate(truncated.len() / 2);
    for bytes in [vec![], b"not wasm at all".to_vec(), garbage, truncated] {
        let err = host.load_code(&bytes).unwrap_err();
        assert!(
            matches!(err, ContractError::InvalidModule { .. }),
            "{err:?}"
        );
        assert!(!host.has_code(&CodeHash::of(&bytes)));
    }
    assert_eq!(host.root(), root);
    assert_usable(&mut host, counter);
}

#[test]
fn simd_and_start_functions_and_foreign_imports_are_refused() {
    let (mut host, counter) = host_with_counter();
    match host.load_code(&wat("simd")) {
        Err(ContractError::InvalidModule { reason }) => {
            assert!(reason.to_lowercase().contains("simd"), "{reason}")
        }
        other => panic!("SIMD module accepted or wrong error: {other:?}"),
    }
    assert_eq!(
        host.load_code(&wat("start")),
        Err(ContractError::StartFunction)
    );
    let wasi = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
           (memory (export "memory") 1) (func (export "mw_call")))"#,
    )
    .unwrap();
    assert!(matches!(
        host.load_code(&wasi),
        Err(ContractError::ForbiddenImport { .. })
    ));
    let wrong_type = wat::parse_str(
        r#"(module (import "mw1" "tick" (func (result i32)))
           (memory (export "memory") 1) (func (export "mw_call")))"#,
    )
    .unwrap();
    assert!(matches!(
        host.load_code(&wrong_type),
        Err(ContractError::ForbiddenImport { .. })
    ));
    let no_entry = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    assert_eq!(
        host.load_code(&no_entry),
        Err(ContractError::MissingExport { name: "mw_call" })
    );
    let huge_memory =
        wat::parse_str(r#"(module (memory (export "memory") 1000) (func (export "mw_call")))"#)
            .unwrap();
    assert!(matches!(
        host.load_code(&huge_memory),
        Err(ContractError::ModuleLimit { .. })
    ));
    // 64-bit memories and tables: refused by the host's own check, not only by wasmi's feature
    // set (which feature unification could widen in some peer's build).
    for (wide, refusal) in [
        (
            r#"(module (memory (export "memory") i64 1) (func (export "mw_call")))"#,
            "memory64 and shared memories are not allowed",
        ),
        (
            r#"(module (table i64 1 funcref) (memory (export "memory") 1) (func (export "mw_call")))"#,
            "64-bit tables are not allowed",
        ),
    ] {
        assert_eq!(
            host.load_code(&wat::parse_str(wide).unwrap()),
            Err(ContractError::InvalidModule {
                reason: refusal.into()
            })
        );
    }
    assert_usable(&mut host, counter);
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let (mut host, counter) = host_with_counter();
    let id = instantiate(&mut host, &wat("loop"), 1);
    let input = Input {
        fuel_limit: Fuel(1_000_000),
        ..call(id, me(), vec![])
    };
    let root = host.root();
    let receipt = host.apply(&input);
    assert_eq!(receipt.result, Err(ContractError::OutOfFuel));
    // wasmi charges a whole basic block up front, so at most one block's worth stays unused.
    assert!(receipt.fuel_used.0 > 999_990, "{:?}", receipt.fuel_used);
    assert_eq!(host.root(), root);
    assert_usable(&mut host, counter);
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let (mut host, counter) = host_with_counter();
    let id = instantiate(&mut host, &wat("memory_bomb"), 1);
    assert_fails_cleanly(
        &mut host,
        counter,
        call(id, me(), vec![]),
        ContractError::MemoryLimit,
    );
}

#[test]
fn deep_recursion_overflows_the_wasm_stack() {
    let (mut host, counter) = host_with_counter();
    let id = instantiate(&mut host, &wat("recursion"), 1);
    assert_fails_cleanly(
        &mut host,
        counter,
        call(id, me(), vec![]),
        ContractError::StackOverflow,
    );
}

#[test]
fn oversized_state_writes_are_refused() {
    let (mut host, counter) = host_with_counter();
    let id = instantiate(&mut host, &wat("big_write"), 1);
    let max = host.params().value_bytes_max;
    let ok = host.apply(&call(id, me(), max.to_le_bytes().to_vec()));
    assert!(ok.result.is_ok(), "{:?}", ok.result);
    assert_eq!(
        host.read(&id, b"big").unwrap().map(<[u8]>::len),
        Some(max as usize)
    );
    assert_fails_cleanly(
        &mut host,
        counter,
        call(id, me(), (max + 1).to_le_bytes().to_vec()),
        ContractError::StateLimit {
            what: "value length",
        },
    );
}

#[test]
fn bad_host_call_pointers_are_a_typed_error() {
    let (mut host, counter) = host_with_counter();
    let id = instantiate(&mut host, &wat("bad_pointer"), 1);
    assert_fails_cleanly(
        &mut host,
        counter,
        call(id, me(), vec![]),
        ContractError::HostMemoryAccess,
    );
}

#[test]
fn wasm_traps_are_typed() {
    let (mut host, counter) = host_with_counter();
    let victim = instantiate(&mut host, &wat("victim"), 1);
    assert_fails_cleanly(
        &mut host,
        counter,
        call(victim, me(), vec![1]),
        ContractError::Trap(TrapKind::Unreachable),
    );
}

#[test]
fn float_nans_are_canonical() {
    let (mut host, counter) = host_with_counter();
    let id = instantiate(&mut host, &wat("nan"), 1);
    let r = host.apply(&call(id, me(), vec![]));
    let out = r.output().unwrap();
    let f32_bits = |i: usize| u32::from_le_bytes(out[i..i + 4].try_into().unwrap());
    let f64_bits = |i: usize| u64::from_le_bytes(out[i..i + 8].try_into().unwrap());
    assert_eq!(
        f32_bits(0),
        0x7fc0_0000,
        "0/0 (x86 hardware gives 0xffc00000)"
    );
    assert_eq!(f32_bits(4), 0x7fc0_0000, "sqrt(-1)");
    assert_eq!(f64_bits(8), 0x7ff8_0000_0000_0000, "0/0");
    assert_eq!(f64_bits(16), 0x7ff8_0000_0000_0000, "inf*0");
    assert_eq!(host.read(&id, b"nan").unwrap(), Some(out));
    assert_usable(&mut host, counter);
}

#[test]
fn inputs_over_the_limits_are_refused_before_running() {
    let (mut host, counter) = host_with_counter();
    let too_much_fuel = Input {
        fuel_limit: Fuel(host.params().fuel_per_input_max.0 + 1),
        ..call(counter, me(), increment(1))
    };
    assert_fails_cleanly(
        &mut host,
        counter,
        too_much_fuel,
        ContractError::InvalidInput {
            reason: "fuel limit above fuel_per_input_max",
        },
    );
    let nobody = ContractId([9; 32]);
    assert_fails_cleanly(
        &mut host,
        counter,
        call(nobody, me(), vec![]),
        ContractError::UnknownContract(nobody),
    );
    let starved = Input {
        fuel_limit: Fuel(10),
        ..call(counter, me(), increment(1))
    };
    assert_fails_cleanly(&mut host, counter, starved, ContractError::OutOfFuel);
}

#[test]
fn proofs_chain_from_the_host_root_to_a_key() {
    let (mut host, counter) = host_with_counter();
    host.apply(&call(counter, me(), increment(3)));
    let contract_root = host.contract_root(&counter).unwrap();
    let proof = host.prove(&counter, b"n").unwrap();
    assert!(proof.verify(&contract_root.0, b"n", Some(&3u64.to_le_bytes())));
    assert!(!proof.verify(&contract_root.0, b"n", Some(&4u64.to_le_bytes())));
    let absent = host.prove(&counter, b"nothing here").unwrap();
    assert!(absent.verify(&contract_root.0, b"nothing here", None));
    let code = host.code_of(&counter).unwrap();
    let leaf = [code.0, contract_root.0].concat();
    assert!(
        host.prove_contract(&counter)
            .verify(&host.root().0, &counter.0, Some(&leaf))
    );
}

#[test]
fn transitions_are_pure_and_a_fork_verifies_them() {
    let mut w = world_scenario::setup(&built("token"), &built("world"));
    let mut rng = world_scenario::Rng::new(42);
    let inputs: Vec<Input> = (0..32)
        .map(|i| world_scenario::random_input(&w, &mut rng, i))
        .collect();
    let referee = w.host.clone();
    let result = w.host.apply_transition(&inputs);
    assert_ne!(result.prior_root, result.next_root);
    assert_eq!(result.prior_root, referee.root());
    assert!(referee.verify_transition(&inputs, &result));
    assert_eq!(
        referee.root(),
        result.prior_root,
        "verifying does not change the referee"
    );
    let mut lie = result.clone();
    lie.fuel_used.0 += 1;
    assert!(!referee.verify_transition(&inputs, &lie));
    let mut lie = result.clone();
    lie.receipts[0].events.clear();
    assert!(!referee.verify_transition(&inputs, &lie));
    assert_ne!(lie.digest(), result.digest());
    // Importing a state under the wrong root is refused.
    let entries = w.host.export_state(&w.world).unwrap();
    let code = w.host.code_of(&w.world).unwrap();
    let mut fresh = ContractHost::new(ConsensusParams::default()).unwrap();
    fresh.load_code(&built("world")).unwrap();
    let wrong = result.prior_root;
    assert!(matches!(
        fresh.import_contract(w.world, code, &entries, wrong),
        Err(ContractError::StateRootMismatch { .. })
    ));
}

#[test]
fn one_big_transition_equals_inputs_applied_one_by_one() {
    // 600 inputs in one transition share wasmi stores (recycled every 16 MiB of dead instances);
    // applied one by one, each input gets its own store. Nothing observable may differ.
    let batch = world_scenario::setup(&built("token"), &built("world"));
    let mut single = world_scenario::setup(&built("token"), &built("world"));
    let mut rng = world_scenario::Rng::new(99);
    let inputs: Vec<Input> = (0..600)
        .map(|i| world_scenario::random_input(&batch, &mut rng, i))
        .collect();
    let mut batch_host = batch.host;
    let result = batch_host.apply_transition(&inputs);
    let receipts: Vec<_> = inputs.iter().map(|i| single.host.apply(i)).collect();
    assert_eq!(result.receipts, receipts);
    assert_eq!(batch_host.root(), single.host.root());
    assert!(receipts.iter().filter(|r| r.result.is_ok()).count() > 100);
}

/// The fuzz target's structured mode, as a seeded test: random host-call programs (every import,
/// pointers and lengths near the edges, nested calls and re-entry between two instances) never
/// panic, a failed input changes nothing, and re-running gives the identical receipt.
#[test]
fn random_host_call_programs_keep_the_invariants() {
    let (mut host, _) = host_with_counter();
    let code = host.load_code(&wat("host_ops")).unwrap();
    let a = host
        .instantiate(code, me(), &[1; 32], &[], Tick(0), FUEL)
        .unwrap()
        .0;
    let b = host
        .instantiate(code, me(), &[2; 32], &[], Tick(0), FUEL)
        .unwrap()
        .0;
    let mut rng = world_scenario::Rng::new(0xf022);
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..1_500 {
        let mut data = a.0.to_vec();
        data.extend_from_slice(&b.0);
        for _ in 0..rng.below(12) {
            data.push(rng.below(17) as u8);
            for _ in 0..4 {
                let v: i64 = match rng.below(4) {
                    0 => rng.below(64) as i64,
                    1 => 32_768 + rng.below(64) as i64,
                    2 => 65_536 - rng.below(64) as i64,
                    _ => rng.next_u64() as i32 as i64,
                };
                data.extend_from_slice(&(v as i32).to_le_bytes());
            }
        }
        let input = Input {
            fuel_limit: Fuel(300_000),
            ..call(a, me(), data)
        };
        let root = host.root();
        let fork = host.clone();
        let receipt = host.apply(&input);
        assert!(receipt.fuel_used <= input.fuel_limit);
        if let Err(error) = &receipt.result {
            assert_eq!(host.root(), root, "failed input changed state: {error:?}");
            *outcomes.entry(error.code()).or_insert(0) += 1;
        } else {
            *outcomes.entry(0).or_insert(0) += 1;
        }
        let mut again = fork;
        assert_eq!(again.apply(&input), receipt);
        assert_eq!(again.root(), host.root());
    }
    // The programs reach successes and a variety of typed failures.
    assert!(outcomes.len() >= 5, "{outcomes:?}");
}

const DETERMINISM_INPUTS: u64 = 10_000;
const DETERMINISM_SEED: u64 = 0x5eed_0f03;

#[test]
fn world_determinism_10k_inputs_twice_and_on_a_fresh_host() {
    let (token, world) = (built("token"), built("world"));
    let a = world_scenario::run(&token, &world, DETERMINISM_SEED, DETERMINISM_INPUTS, None);
    let b = world_scenario::run(&token, &world, DETERMINISM_SEED, DETERMINISM_INPUTS, None);
    assert_eq!(a, b, "two native runs");
    // Half-way, the state is exported and re-imported into a brand-new host.
    let fork_at = DETERMINISM_INPUTS / u64::from(world_scenario::PLAYERS) / 2;
    let c = world_scenario::run(
        &token,
        &world,
        DETERMINISM_SEED,
        DETERMINISM_INPUTS,
        Some(fork_at),
    );
    assert_eq!(a, c, "a fresh host rebuilt from exported state");
    // The scenario exercises both paths.
    assert!(
        a.ok > 1_000 && u64::from(a.ok) < DETERMINISM_INPUTS - 1_000,
        "{a:?}"
    );
    let d = world_scenario::run(
        &token,
        &world,
        DETERMINISM_SEED + 1,
        DETERMINISM_INPUTS,
        None,
    );
    assert_ne!(a.chain, d.chain, "another seed gives another history");
}

#[test]
fn world_determinism_native_equals_wasm32_host_under_node() {
    let host_wasm = repo().join("contracts/target/wasm/host_node.wasm");
    assert!(
        host_wasm.exists(),
        "{} missing: run `scripts/build-contracts.sh` (it builds the wasm32 contract host too)",
        host_wasm.display()
    );
    let script = repo().join("tests/it/contract/run_host.mjs");
    let output = std::process::Command::new("node")
        .arg(&script)
        .arg(&host_wasm)
        .arg(DETERMINISM_SEED.to_string())
        .arg(DETERMINISM_INPUTS.to_string())
        .output()
        .expect("`node` must be installed (v18+) to run the wasm32 determinism test");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let from_node = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let native = world_scenario::run(
        &built("token"),
        &built("world"),
        DETERMINISM_SEED,
        DETERMINISM_INPUTS,
        None,
    );
    assert_eq!(
        from_node,
        hex::encode(native.to_bytes()),
        "wasm32 host under Node vs native"
    );
}

/// `(contract, topic)` of each event of `r`, in order.
fn event_topics(r: &Receipt) -> Vec<(ContractId, Vec<u8>)> {
    r.events
        .iter()
        .map(|e| (e.contract, e.topic.clone()))
        .collect()
}
