;; The record frames' checks (record-frame.ts), for buffers that live in this
;; module's memory (crc32.ts: crcArena): CRC-32 (IEEE 802.3, zlib's) by
;; slicing-by-8, about twice the speed of the same loop in JavaScript on
;; log-line-sized records (word loads and table loads without a bounds check
;; each); and XXH32 (xxh32.ts) with its four lanes in one SIMD vector, about
;; five times faster again per record (#16).
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
  ;; sealAllXxh32(p, end, salt): sealAll() for frames checked by XXH32 of the
  ;; payload, seeded with its length XOR `salt` (record-frame.ts: xxh32Frames).
  (func (export "sealAllXxh32") (param $p i32) (param $end i32) (param $salt i32)
    (local $n i32)
    (block $done
      (loop $frame
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $n (i32.load (local.get $p)))
        (i32.store offset=4 (local.get $p)
          (call $xxh32 (i32.add (local.get $p) (i32.const 8)) (local.get $n) (i32.xor (local.get $n) (local.get $salt))))
        (local.set $p (i32.add (local.get $p) (i32.add (local.get $n) (i32.const 8))))
        (br $frame))))
  ;; xxh32(p, n, seed): XXH32 of memory [p, p + n). The lanes v1..v4 of the
  ;; reference are the four i32 lanes of $v: each 16-byte stripe is one load.
  (func $xxh32 (export "xxh32") (param $p i32) (param $n i32) (param $seed i32) (result i32)
    (local $end i32) (local $h i32) (local $v v128) (local $last i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (if (i32.ge_u (local.get $n) (i32.const 16))
      (then
        ;; seed + P1 + P2, seed + P2, seed, seed - P1
        (local.set $v (i32x4.add (i32x4.splat (local.get $seed))
          (v128.const i32x4 0x24234428 0x85EBCA77 0 0x61C8864F)))
        (local.set $last (i32.sub (local.get $end) (i32.const 16)))
        (loop $stripe
          (local.set $v (i32x4.add (local.get $v)
            (i32x4.mul (v128.load (local.get $p)) (v128.const i32x4 0x85EBCA77 0x85EBCA77 0x85EBCA77 0x85EBCA77))))
          (local.set $v (i32x4.mul
            (v128.or (i32x4.shl (local.get $v) (i32.const 13)) (i32x4.shr_u (local.get $v) (i32.const 19)))
            (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $stripe (i32.le_u (local.get $p) (local.get $last))))
        (local.set $h (i32.add
          (i32.add (i32.rotl (i32x4.extract_lane 0 (local.get $v)) (i32.const 1)) (i32.rotl (i32x4.extract_lane 1 (local.get $v)) (i32.const 7)))
          (i32.add (i32.rotl (i32x4.extract_lane 2 (local.get $v)) (i32.const 12)) (i32.rotl (i32x4.extract_lane 3 (local.get $v)) (i32.const 18))))))
      (else (local.set $h (i32.add (local.get $seed) (i32.const 0x165667B1)))))
    (local.set $h (i32.add (local.get $h) (local.get $n)))
    (block $done4
      (loop $by4
        (br_if $done4 (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $end)))
        (local.set $h (i32.mul
          (i32.rotl (i32.add (local.get $h) (i32.mul (i32.load (local.get $p)) (i32.const 0xC2B2AE3D))) (i32.const 17))
          (i32.const 0x27D4EB2F)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $by4)))
    (block $done1
      (loop $by1
        (br_if $done1 (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h (i32.mul
          (i32.rotl (i32.add (local.get $h) (i32.mul (i32.load8_u (local.get $p)) (i32.const 0x165667B1))) (i32.const 11))
          (i32.const 0x9E3779B1)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $by1)))
    (local.set $h (i32.mul (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 15))) (i32.const 0x85EBCA77)))
    (local.set $h (i32.mul (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 13))) (i32.const 0xC2B2AE3D)))
    (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
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
