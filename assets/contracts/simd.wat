;; Edge case: SIMD is off. Loading must fail with ContractError::InvalidModule.
(module
  (memory (export "memory") 1)
  (func (export "mw_call")
    (drop (i32x4.extract_lane 0 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 5 6 7 8))))))
