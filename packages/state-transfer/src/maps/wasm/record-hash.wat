;; The per-record hashes of a SlabMap being built from received bytes (see record-hash.ts): for each
;; packed record `keyLength u32 LE, valueLength u32 LE, key, value` of a run, the two-lane hash of the key
;; and of the value, folded together as entry-hash.ts does (hashBytes, combine), bit for bit. Compiled by
;; tools/scripts/gen-wasm.mjs into record-hash-wasm.ts; the JavaScript versions stay the reference.
(module
  (memory (export "memory") 1)
  ;; Digest lane sums (added to; the caller sets and reads them) and the OR of every key/value byte read.
  (global $sumA (export "sumA") (mut i32) (i32.const 0))
  (global $sumB (export "sumB") (mut i32) (i32.const 0))
  (global $high (export "high") (mut i32) (i32.const 0))
  ;; Output of $hash.
  (global $laneA (mut i32) (i32.const 0))
  (global $laneB (mut i32) (i32.const 0))

  ;; murmur3 fmix32 (checksum.ts mix32).
  (func $mix (param $h i32) (result i32)
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0x85ebca6b)))
    (local.set $h (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 13))))
    (local.set $h (i32.mul (local.get $h) (i32.const 0xc2b2ae35)))
    (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))))

  ;; entry-hash.ts hashBytes: bytes [p, e), four bytes per step little-endian, then byte by byte.
  (func $hash (param $p i32) (param $e i32) (param $a i32) (param $b i32)
    (local $w i32) (local $n i32) (local $high i32)
    (local.set $n (i32.sub (local.get $e) (local.get $p)))
    (local.set $high (global.get $high))
    (block $words
      (loop $word
        (br_if $words (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $e)))
        (local.set $w (i32.load (local.get $p)))
        (local.set $high (i32.or (local.get $high) (local.get $w)))
        (local.set $a (i32.mul (i32.xor (local.get $a) (local.get $w)) (i32.const 0x01000193)))
        (local.set $b (i32.mul (i32.xor (local.get $b) (local.get $w)) (i32.const 0x5bd1e995)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $word)))
    (block $bytes
      (loop $byte
        (br_if $bytes (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $w (i32.load8_u (local.get $p)))
        (local.set $high (i32.or (local.get $high) (local.get $w)))
        (local.set $a (i32.mul (i32.xor (local.get $a) (local.get $w)) (i32.const 0x01000193)))
        (local.set $b (i32.mul (i32.xor (local.get $b) (local.get $w)) (i32.const 0x5bd1e995)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $byte)))
    (global.set $high (local.get $high))
    (global.set $laneA (call $mix (i32.xor (local.get $a) (local.get $n))))
    (global.set $laneB (call $mix (i32.xor (local.get $b) (local.get $n)))))

  ;; The records in [0, end): record i's key hash (lane A) to outHash + 4i and `base` + its offset to
  ;; outAt + 4i; each entry's hash added to sumA/sumB. Returns the count, or -1 when a record overruns
  ;; `end` (nothing is then meaningful).
  (func (export "hashRecords") (param $end i32) (param $base i32) (param $outHash i32) (param $outAt i32) (result i32)
    (local $o i32) (local $kAt i32) (local $keyEnd i32) (local $valueEnd i32)
    (local $k1 i32) (local $k2 i32) (local $count i32) (local $sumA i32) (local $sumB i32)
    (local.set $sumA (global.get $sumA))
    (local.set $sumB (global.get $sumB))
    (block $done
      (loop $record
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (if (i32.gt_u (i32.add (local.get $o) (i32.const 8)) (local.get $end)) (then (return (i32.const -1))))
        (local.set $kAt (i32.add (local.get $o) (i32.const 8)))
        (local.set $keyEnd (i32.add (local.get $kAt) (i32.load (local.get $o))))
        (local.set $valueEnd (i32.add (local.get $keyEnd) (i32.load offset=4 (local.get $o))))
        ;; (unsigned overflow of the additions shows as an end before its start)
        (if (i32.or (i32.or (i32.lt_u (local.get $keyEnd) (local.get $kAt)) (i32.lt_u (local.get $valueEnd) (local.get $keyEnd)))
                    (i32.gt_u (local.get $valueEnd) (local.get $end)))
          (then (return (i32.const -1))))
        (call $hash (local.get $kAt) (local.get $keyEnd) (i32.const 0x811c9dc5) (i32.const 0x9747b28c))
        (local.set $k1 (global.get $laneA))
        (local.set $k2 (global.get $laneB))
        (i32.store (i32.add (local.get $outHash) (i32.shl (local.get $count) (i32.const 2))) (local.get $k1))
        (i32.store (i32.add (local.get $outAt) (i32.shl (local.get $count) (i32.const 2))) (i32.add (local.get $base) (local.get $o)))
        ;; VALUE_SEED_A/B = SEED_A/B ^ 0x5bd1e995
        (call $hash (local.get $keyEnd) (local.get $valueEnd) (i32.const 0xdacd7450) (i32.const 0xcc965b19))
        ;; combine(k1, k2)
        (local.set $sumA (i32.add (local.get $sumA) (call $mix (i32.xor (local.get $k1) (call $mix (global.get $laneA))))))
        (local.set $sumB (i32.add (local.get $sumB) (call $mix (i32.xor (local.get $k2) (call $mix (i32.add (global.get $laneB) (i32.const 0x9e3779b9)))))))
        (local.set $o (local.get $valueEnd))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (br $record)))
    (global.set $sumA (local.get $sumA))
    (global.set $sumB (local.get $sumB))
    (local.get $count))
)
