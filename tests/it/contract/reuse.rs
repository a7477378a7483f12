//! Instance reuse: a call must see exactly the state a fresh instantiation gives, whether the host
//! hands it a new instance or a pooled one reset to the module's image (see
//! `meshwork::proto::contract`, "Instance reuse").

use meshwork::proto::contract::{ContractError, ContractHost, ContractId, Input, TrapKind};

use super::{FUEL, call, me};

/// A probe contract. `mw_call` first outputs what it finds — its global `g` (starts at 5), memory
/// byte 0 (a data segment sets it to 7) and the memory size in pages — and then dirties all three
/// as input byte 0 asks: `0` = bump `g` and byte 0, `1` = also grow memory by a page, `2` = bump
/// then trap. With `exported`, `g` is exported (the module is resettable); without, it is
/// private (the host must instantiate afresh every call).
fn probe(exported: bool) -> Vec<u8> {
    let export = if exported { r#"(export "g")"# } else { "" };
    wat::parse_str(format!(
        r#"(module
          (import "mw1" "input_read" (func $input_read (param i32)))
          (import "mw1" "output" (func $output (param i32 i32)))
          (memory (export "memory") 1)
          (global $g {export} (mut i32) (i32.const 5))
          (data (i32.const 0) "\07")
          (func (export "mw_call")
            (call $input_read (i32.const 300))
            (i32.store (i32.const 200) (global.get $g))
            (i32.store8 (i32.const 204) (i32.load8_u (i32.const 0)))
            (i32.store (i32.const 205) (memory.size))
            (call $output (i32.const 200) (i32.const 9))
            (global.set $g (i32.add (global.get $g) (i32.const 1)))
            (i32.store8 (i32.const 0) (i32.add (i32.load8_u (i32.const 0)) (i32.const 1)))
            (if (i32.eq (i32.load8_u (i32.const 300)) (i32.const 1))
              (then (drop (memory.grow (i32.const 1)))))
            (if (i32.eq (i32.load8_u (i32.const 300)) (i32.const 2))
              (then unreachable))))"#
    ))
    .expect("probe parses")
}

/// What a fresh instance reports: g = 5, byte 0 = 7, 1 page.
const FRESH: [u8; 9] = [5, 0, 0, 0, 7, 1, 0, 0, 0];

fn with_probe(exported: bool) -> (ContractHost, ContractId, ContractId) {
    let mut host = ContractHost::new(Default::default()).expect("default params");
    let code = host.load_code(&probe(exported)).expect("probe loads");
    assert_eq!(host.reuses_instances(&code), exported);
    let mut create = |salt| {
        host.instantiate(code, me(), &[salt; 32], &[], Default::default(), FUEL)
            .expect("probe instantiates")
            .0
    };
    let (a, b) = (create(1), create(2));
    (host, a, b)
}

fn run(host: &mut ContractHost, id: ContractId, mode: u8) -> Result<Vec<u8>, ContractError> {
    host.apply(&call(id, me(), vec![mode])).result
}

#[test]
fn every_call_sees_a_fresh_instance_whether_reused_or_not() {
    for exported in [true, false] {
        let (mut host, a, b) = with_probe(exported);
        // Dirty globals and memory, grow memory, trap halfway: the next call sees none of it.
        for mode in [0, 0, 1, 0, 2, 0, 1, 2, 0] {
            let result = run(&mut host, a, mode);
            if mode == 2 {
                assert_eq!(result, Err(ContractError::Trap(TrapKind::Unreachable)));
            } else {
                assert_eq!(
                    result,
                    Ok(FRESH.to_vec()),
                    "exported {exported}, mode {mode}"
                );
            }
            // Another contract with the same code shares the pool.
            assert_eq!(run(&mut host, b, 0), Ok(FRESH.to_vec()));
        }
        // Many inputs in one transition (one store), and a referee's fork re-executing them.
        let inputs: Vec<Input> = (0..20)
            .map(|i| call(if i % 3 == 0 { b } else { a }, me(), vec![(i % 2) as u8]))
            .collect();
        let claimed = host.clone().apply_transition(&inputs);
        assert!(
            claimed
                .receipts
                .iter()
                .all(|r| r.output() == Ok(&FRESH[..]))
        );
        assert!(host.verify_transition(&inputs, &claimed));
    }
}

#[test]
fn reuse_changes_no_result_or_fuel() {
    // The same inputs on a resettable and an unresettable build of the same logic give the same
    // outputs and the same fuel (instantiation is charged either way).
    let outcome = |exported| {
        let (mut host, a, b) = with_probe(exported);
        let inputs: Vec<Input> = (0..12)
            .map(|i| call(if i % 2 == 0 { a } else { b }, me(), vec![(i % 3) as u8]))
            .collect();
        let result = host.apply_transition(&inputs);
        let receipts: Vec<_> = result
            .receipts
            .iter()
            .map(|r| (r.result.clone(), r.fuel_used))
            .collect();
        (receipts, result.fuel_used)
    };
    assert_eq!(outcome(true), outcome(false));
}
