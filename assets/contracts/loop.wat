;; Edge case: never returns. Must end with ContractError::OutOfFuel.
(module
  (memory (export "memory") 1)
  (func (export "mw_call")
    (loop $forever (br $forever))))
