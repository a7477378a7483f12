;; Writes a value whose length is input u32 (LE) under key "big". Over value_bytes_max it must
;; end with ContractError::StateLimit.
(module
  (import "mw1" "input_read" (func $input_read (param i32)))
  (import "mw1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "big")
  (func (export "mw_call")
    (call $input_read (i32.const 16))
    (call $set (i32.const 0) (i32.const 3) (i32.const 64) (i32.load (i32.const 16)))))
