;; Passes a key pointer past the end of memory to the host: ContractError::HostMemoryAccess.
(module
  (import "mw1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "mw_call")
    (call $set (i32.const 65530) (i32.const 16) (i32.const 0) (i32.const 1))))
