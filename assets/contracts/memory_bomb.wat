;; Edge case: grows memory one page at a time, forever. Must end with ContractError::MemoryLimit
;; (the limiter traps instead of letting memory.grow return -1).
(module
  (memory (export "memory") 1)
  (func (export "mw_call")
    (loop $more
      (drop (memory.grow (i32.const 1)))
      (br $more))))
