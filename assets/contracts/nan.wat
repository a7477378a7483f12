;; Floats are allowed with canonical NaNs. Outputs and stores 24 bytes:
;;   f32.div 0 0 (x86 hardware gives the *negative* NaN 0xffc00000) | f32.sqrt -1
;;   | f64.div 0 0 | f64.mul inf 0
;; Every one must read 0x7fc00000 / 0x7ff8000000000000 on every platform.
(module
  (import "mw1" "output" (func $output (param i32 i32)))
  (import "mw1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "nan")
  (func (export "mw_call")
    (f32.store (i32.const 16) (f32.div (f32.const 0) (f32.const 0)))
    (f32.store (i32.const 20) (f32.sqrt (f32.const -1)))
    (f64.store (i32.const 24) (f64.div (f64.const 0) (f64.const 0)))
    (f64.store (i32.const 32) (f64.mul (f64.const inf) (f64.const 0)))
    (call $set (i32.const 0) (i32.const 3) (i32.const 16) (i32.const 24))
    (call $output (i32.const 16) (i32.const 24))))
