//! Drives the contract host with random modules and random host-call programs.
//!
//! First byte even: the rest is loaded as a wasm module; if it loads, it is instantiated and
//! called. Loading, instantiating and running must return errors, never panic or hang.
//!
//! First byte odd: the rest is a `host_ops` program (see `assets/contracts/host_ops.wat`): every
//! ABI import called with fuzzer-chosen pointers, lengths, fuel and nesting, against two
//! `host_ops` instances that may call each other (re-entry) and a counter. Invariants: a failed
//! input leaves the root unchanged, fuel used never exceeds the limit, and running the same input
//! on a second fork gives the identical receipt and root.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshwork::proto::contract::{
    Address, ConsensusParams, ContractHost, ContractId, Fuel, Input, Tick,
};

struct Fixture {
    host: ContractHost,
    a: ContractId,
    b: ContractId,
}

const FUEL: Fuel = Fuel(2_000_000);

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let source = include_str!("../../../assets/contracts/host_ops.wat");
        let wasm = wat::parse_str(source).expect("host_ops.wat parses");
        let mut host = ContractHost::new(ConsensusParams::default()).expect("valid params");
        let code = host.load_code(&wasm).expect("host_ops loads");
        let me = Address([1; 32]);
        let (a, _) = host
            .instantiate(code, me, &[1; 32], &[], Tick(0), FUEL)
            .expect("a");
        let (b, _) = host
            .instantiate(code, me, &[2; 32], &[], Tick(0), FUEL)
            .expect("b");
        Fixture { host, a, b }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let caller = Address([9; 32]);
    if mode % 2 == 0 {
        let mut host = f.host.clone();
        if let Ok(code) = host.load_code(rest) {
            if let Ok((id, _)) = host.instantiate(code, caller, &[0; 32], &[], Tick(1), FUEL) {
                let input = Input {
                    contract: id,
                    caller,
                    tick: Tick(2),
                    fuel_limit: FUEL,
                    data: rest.iter().take(64).copied().collect(),
                };
                let receipt = host.apply(&input);
                assert!(receipt.fuel_used <= FUEL);
            }
        }
        return;
    }
    let mut data = f.a.0.to_vec();
    data.extend_from_slice(&f.b.0);
    data.extend_from_slice(rest);
    let input = Input {
        contract: f.a,
        caller,
        tick: Tick(3),
        fuel_limit: FUEL,
        data,
    };
    let mut host = f.host.clone();
    let root = host.root();
    let receipt = host.apply(&input);
    assert!(receipt.fuel_used <= FUEL);
    if receipt.result.is_err() {
        assert_eq!(host.root(), root, "a failed input changed state");
        assert!(receipt.events.is_empty());
    }
    let mut again = f.host.clone();
    assert_eq!(again.apply(&input), receipt, "same input, same receipt");
    assert_eq!(again.root(), host.root());
});
