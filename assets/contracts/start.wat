;; Edge case: start functions are refused. Loading must fail with ContractError::StartFunction.
(module
  (memory (export "memory") 1)
  (func $boot)
  (start $boot)
  (func (export "mw_call")))
