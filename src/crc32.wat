;; CRC-32 (IEEE 802.3, zlib's) by slicing-by-8, for buffers that live in this
;; module's memory (crc32.ts: crcArena). About twice the speed of the same
;; loop in JavaScript on log-line-sized records: word loads and table loads
;; without a bounds check each.
;;
;; Memory (given by JavaScript, never grown): bytes [0, 8192) hold the eight
;; 256-entry tables, table k at k * 1024 (filled by crc32.ts); the data follow.
;; Regenerate src/crc32-wasm.ts after a change: node scripts/crc32-wasm.mjs
;; (test/crc32.test.ts checks that the two agree).
(module
  (import "env" "mem" (memory 1))
  ;; sealAll(p, end): every record frame (record-frame.ts) in [p, end), frames
  ;; back to back, each with its payload length n already at its start: its
  ;; CRC-32 of the length and the payload stored at p + 4 (little-endian, as
  ;; WebAssembly stores). One call per write of the spool's buffer, not one per
  ;; record: a call into the module costs about what 100 bytes of CRC do.
  (func (export "sealAll") (param $p i32) (param $end i32)
    (local $n i32)
    (block $done
      (loop $frame
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $n (i32.load (local.get $p)))
        (i32.store offset=4 (local.get $p)
          (call $crc (i32.add (local.get $p) (i32.const 8)) (local.get $n)
            (call $crc (local.get $p) (i32.const 4) (i32.const 0))))
        (local.set $p (i32.add (local.get $p) (i32.add (local.get $n) (i32.const 8))))
        (br $frame))))
  ;; crc(p, n, c): the CRC-32 of memory [p, p + n), continuing from c (0 to start).
  (func $crc (export "crc") (param $p i32) (param $n i32) (param $c i32) (result i32)
    (local $end i32) (local $a i32) (local $b i32)
    (local.set $c (i32.xor (local.get $c) (i32.const -1)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done8
      (loop $by8
        (br_if $done8 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
        (local.set $a (i32.xor (local.get $c) (i32.load (local.get $p))))
        (local.set $b (i32.load offset=4 (local.get $p)))
        (local.set $c
          (i32.xor
            (i32.xor
              (i32.xor
                (i32.load offset=7168 (i32.shl (i32.and (local.get $a) (i32.const 255)) (i32.const 2)))
                (i32.load offset=6144 (i32.shl (i32.and (i32.shr_u (local.get $a) (i32.const 8)) (i32.const 255)) (i32.const 2))))
              (i32.xor
                (i32.load offset=5120 (i32.shl (i32.and (i32.shr_u (local.get $a) (i32.const 16)) (i32.const 255)) (i32.const 2)))
                (i32.load offset=4096 (i32.shl (i32.shr_u (local.get $a) (i32.const 24)) (i32.const 2)))))
            (i32.xor
              (i32.xor
                (i32.load offset=3072 (i32.shl (i32.and (local.get $b) (i32.const 255)) (i32.const 2)))
                (i32.load offset=2048 (i32.shl (i32.and (i32.shr_u (local.get $b) (i32.const 8)) (i32.const 255)) (i32.const 2))))
              (i32.xor
                (i32.load offset=1024 (i32.shl (i32.and (i32.shr_u (local.get $b) (i32.const 16)) (i32.const 255)) (i32.const 2)))
                (i32.load (i32.shl (i32.shr_u (local.get $b) (i32.const 24)) (i32.const 2)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $by8)))
    (block $done1
      (loop $by1
        (br_if $done1 (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c
          (i32.xor
            (i32.load (i32.shl (i32.and (i32.xor (local.get $c) (i32.load8_u (local.get $p))) (i32.const 255)) (i32.const 2)))
            (i32.shr_u (local.get $c) (i32.const 8))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $by1)))
    (i32.xor (local.get $c) (i32.const -1))))
