;; A callee for rollback tests. Writes "victim" = "written", emits an event, then by input[0]:
;; 0 returns "ok", 1 traps (unreachable), 2 aborts with "nope", 3 loops until out of fuel.
(module
  (import "mw1" "input_read" (func $input_read (param i32)))
  (import "mw1" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "mw1" "emit" (func $emit (param i32 i32 i32 i32)))
  (import "mw1" "output" (func $output (param i32 i32)))
  (import "mw1" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "victim")
  (data (i32.const 8) "written")
  (data (i32.const 16) "nope")
  (data (i32.const 24) "ok")
  (func (export "mw_call")
    (call $input_read (i32.const 64))
    (call $set (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 7))
    (call $emit (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 7))
    (block $done
      (br_if $done (i32.eqz (i32.load8_u (i32.const 64))))
      (if (i32.eq (i32.load8_u (i32.const 64)) (i32.const 1)) (then unreachable))
      (if (i32.eq (i32.load8_u (i32.const 64)) (i32.const 2))
        (then (call $abort (i32.const 16) (i32.const 4))))
      (loop $forever (br $forever)))
    (call $output (i32.const 24) (i32.const 2))))
