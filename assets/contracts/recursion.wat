;; Edge case: unbounded recursion. Must end with ContractError::StackOverflow, not a host crash.
(module
  (memory (export "memory") 1)
  (func $down (param i64) (result i64)
    (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "mw_call")
    (drop (call $down (i64.const 0)))))
