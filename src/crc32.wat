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
  ;; Four frames in a row of a stripe or more each are hashed side by side:
  ;; a stripe's round is a chain of two multiplies whose latency, not the
  ;; work, sets the speed of one hash (about 14 cycles per 16 bytes); four
  ;; independent chains overlap (#16: 250-byte records sealed in 29 ns each
  ;; instead of 45; real log lines, 112-400 bytes, in 61 instead of 66: what
  ;; the shortest of four lacks, and the tails, are hashed one at a time).
  (func (export "sealAllXxh32") (param $p i32) (param $end i32) (param $salt i32)
    (local $n0 i32) (local $n1 i32) (local $n2 i32) (local $n3 i32)
    (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $next i32)
    (local $q0 i32) (local $q1 i32) (local $q2 i32) (local $q3 i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $k i32)
    (block $done
      (loop $frame
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $n0 (i32.load (local.get $p)))
        (local.set $p1 (i32.add (local.get $p) (i32.add (local.get $n0) (i32.const 8))))
        (block $single
          (br_if $single (i32.lt_u (local.get $n0) (i32.const 16)))
          (br_if $single (i32.ge_u (local.get $p1) (local.get $end)))
          (local.set $n1 (i32.load (local.get $p1)))
          (br_if $single (i32.lt_u (local.get $n1) (i32.const 16)))
          (local.set $p2 (i32.add (local.get $p1) (i32.add (local.get $n1) (i32.const 8))))
          (br_if $single (i32.ge_u (local.get $p2) (local.get $end)))
          (local.set $n2 (i32.load (local.get $p2)))
          (br_if $single (i32.lt_u (local.get $n2) (i32.const 16)))
          (local.set $p3 (i32.add (local.get $p2) (i32.add (local.get $n2) (i32.const 8))))
          (br_if $single (i32.ge_u (local.get $p3) (local.get $end)))
          (local.set $n3 (i32.load (local.get $p3)))
          (br_if $single (i32.lt_u (local.get $n3) (i32.const 16)))
          (local.set $next (i32.add (local.get $p3) (i32.add (local.get $n3) (i32.const 8))))
          ;; The stripes all four have (one at least), side by side.
          (local.set $k (i32.shr_u
            (call $min (call $min (local.get $n0) (local.get $n1)) (call $min (local.get $n2) (local.get $n3)))
            (i32.const 4)))
          (local.set $q0 (i32.add (local.get $p) (i32.const 8)))
          (local.set $q1 (i32.add (local.get $p1) (i32.const 8)))
          (local.set $q2 (i32.add (local.get $p2) (i32.const 8)))
          (local.set $q3 (i32.add (local.get $p3) (i32.const 8)))
          (local.set $v0 (call $lanes (i32.xor (local.get $n0) (local.get $salt))))
          (local.set $v1 (call $lanes (i32.xor (local.get $n1) (local.get $salt))))
          (local.set $v2 (call $lanes (i32.xor (local.get $n2) (local.get $salt))))
          (local.set $v3 (call $lanes (i32.xor (local.get $n3) (local.get $salt))))
          ;; The round is written out in each chain, and in $rest, rather than called: Node 20's V8
          ;; (11.3) does not inline wasm calls (--wasm-inlining is off), and a call per stripe and
          ;; chain would sit between the four chains this loop overlaps.
          (loop $side
            (local.set $v0 (i32x4.add (local.get $v0) (i32x4.mul (v128.load (local.get $q0)) (v128.const i32x4 0x85EBCA77 0x85EBCA77 0x85EBCA77 0x85EBCA77))))
            (local.set $v0 (i32x4.mul
              (v128.or (i32x4.shl (local.get $v0) (i32.const 13)) (i32x4.shr_u (local.get $v0) (i32.const 19)))
              (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)))
            (local.set $v1 (i32x4.add (local.get $v1) (i32x4.mul (v128.load (local.get $q1)) (v128.const i32x4 0x85EBCA77 0x85EBCA77 0x85EBCA77 0x85EBCA77))))
            (local.set $v1 (i32x4.mul
              (v128.or (i32x4.shl (local.get $v1) (i32.const 13)) (i32x4.shr_u (local.get $v1) (i32.const 19)))
              (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)))
            (local.set $v2 (i32x4.add (local.get $v2) (i32x4.mul (v128.load (local.get $q2)) (v128.const i32x4 0x85EBCA77 0x85EBCA77 0x85EBCA77 0x85EBCA77))))
            (local.set $v2 (i32x4.mul
              (v128.or (i32x4.shl (local.get $v2) (i32.const 13)) (i32x4.shr_u (local.get $v2) (i32.const 19)))
              (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)))
            (local.set $v3 (i32x4.add (local.get $v3) (i32x4.mul (v128.load (local.get $q3)) (v128.const i32x4 0x85EBCA77 0x85EBCA77 0x85EBCA77 0x85EBCA77))))
            (local.set $v3 (i32x4.mul
              (v128.or (i32x4.shl (local.get $v3) (i32.const 13)) (i32x4.shr_u (local.get $v3) (i32.const 19)))
              (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)))
            (local.set $q0 (i32.add (local.get $q0) (i32.const 16)))
            (local.set $q1 (i32.add (local.get $q1) (i32.const 16)))
            (local.set $q2 (i32.add (local.get $q2) (i32.const 16)))
            (local.set $q3 (i32.add (local.get $q3) (i32.const 16)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br_if $side (local.get $k)))
          ;; Then each one's own remaining stripes and its tail.
          (i32.store offset=4 (local.get $p)
            (call $rest (local.get $v0) (local.get $q0) (local.get $p1) (local.get $n0)))
          (i32.store offset=4 (local.get $p1)
            (call $rest (local.get $v1) (local.get $q1) (local.get $p2) (local.get $n1)))
          (i32.store offset=4 (local.get $p2)
            (call $rest (local.get $v2) (local.get $q2) (local.get $p3) (local.get $n2)))
          (i32.store offset=4 (local.get $p3)
            (call $rest (local.get $v3) (local.get $q3) (local.get $next) (local.get $n3)))
          (local.set $p (local.get $next))
          (br $frame))
        (i32.store offset=4 (local.get $p)
          (call $xxh32 (i32.add (local.get $p) (i32.const 8)) (local.get $n0) (i32.xor (local.get $n0) (local.get $salt))))
        (local.set $p (local.get $p1))
        (br $frame))))
  (func $min (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_u (local.get $a) (local.get $b))))
  ;; The reference's four lanes for `seed`: seed + P1 + P2, seed + P2, seed, seed - P1.
  (func $lanes (param $seed i32) (result v128)
    (i32x4.add (i32x4.splat (local.get $seed)) (v128.const i32x4 0x24234428 0x85EBCA77 0 0x61C8864F)))
  ;; rest(v, p, end, n): the hash of a payload of n (16 or more) bytes ending at
  ;; `end` whose stripes before p are in the lanes v.
  (func $rest (param $v v128) (param $p i32) (param $end i32) (param $n i32) (result i32)
    (local $last i32)
    (local.set $last (i32.sub (local.get $end) (i32.const 16)))
    (block $done
      (loop $stripe
        (br_if $done (i32.gt_u (local.get $p) (local.get $last)))
        (local.set $v (i32x4.add (local.get $v) (i32x4.mul (v128.load (local.get $p)) (v128.const i32x4 0x85EBCA77 0x85EBCA77 0x85EBCA77 0x85EBCA77))))
        (local.set $v (i32x4.mul
          (v128.or (i32x4.shl (local.get $v) (i32.const 13)) (i32x4.shr_u (local.get $v) (i32.const 19)))
          (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $stripe)))
    (call $tail
      (i32.add (local.get $n)
        (i32.add
          (i32.add (i32.rotl (i32x4.extract_lane 0 (local.get $v)) (i32.const 1)) (i32.rotl (i32x4.extract_lane 1 (local.get $v)) (i32.const 7)))
          (i32.add (i32.rotl (i32x4.extract_lane 2 (local.get $v)) (i32.const 12)) (i32.rotl (i32x4.extract_lane 3 (local.get $v)) (i32.const 18)))))
      (local.get $p) (local.get $end)))
  ;; xxh32(p, n, seed): XXH32 of memory [p, p + n). The lanes v1..v4 of the
  ;; reference are the four i32 lanes of a vector: each 16-byte stripe is one load.
  (func $xxh32 (export "xxh32") (param $p i32) (param $n i32) (param $seed i32) (result i32)
    (if (result i32) (i32.ge_u (local.get $n) (i32.const 16))
      (then (call $rest (call $lanes (local.get $seed)) (local.get $p) (i32.add (local.get $p) (local.get $n)) (local.get $n)))
      (else (call $tail (i32.add (i32.add (local.get $seed) (i32.const 0x165667B1)) (local.get $n)) (local.get $p) (i32.add (local.get $p) (local.get $n))))))
  ;; tail(h, p, end): the last bytes [p, end), fewer than 16, into h, and the avalanche.
  (func $tail (param $h i32) (param $p i32) (param $end i32) (result i32)
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
