;; Causal attention kernels of the CPU backend: functions only, spliced into kernels.wat's module by
;; scripts/build-wasm.mjs (they use its memory and $vexp). Scores live as "query strips": for 8 consecutive queries an
;; (n keys × 8) block, key-major, so one key's scores for the 8 queries are two vectors. That is the C gemm_block
;; writes for an (n × 8) product with ldc 8, and the B panel it reads for a product over keys; and softmax over keys
;; becomes vertical (lanes are queries). A key k is visible to the query at position q when k <= q.
;; Strip j (queries q0+8j .. q0+8j+7) is at st + j·n·8 floats; pointers are byte addresses, counts are floats.

  ;; P = exp(scale·S - scale·max) over the visible keys, 0 elsewhere, in place over the raw scores S of the strips
  ;; for queries q0 .. q0+r (n keys). Per query i < ceil(r/8)·8: max S to pmax[i] (float32), Σ P to psum[i] (float64).
  (func (export "attn_softmax_fwd") (param $st i32) (param $n i32) (param $r i32) (param $q0 i32) (param $scale f32)
        (param $pmax i32) (param $psum i32)
    (local $j i32) (local $k i32) (local $p i32) (local $vs v128) (local $pos0 v128) (local $pos1 v128)
    (local $m0 v128) (local $m1 v128) (local $e0 v128) (local $e1 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $vs (f32x4.splat (local.get $scale)))
    (loop $strips
      (local.set $pos0 (i32x4.add (i32x4.splat (i32.add (local.get $q0) (local.get $j))) (v128.const i32x4 0 1 2 3)))
      (local.set $pos1 (i32x4.add (local.get $pos0) (v128.const i32x4 4 4 4 4)))
      (local.set $m0 (v128.const f32x4 -inf -inf -inf -inf))
      (local.set $m1 (v128.const f32x4 -inf -inf -inf -inf))
      (local.set $p (local.get $st))
      (local.set $k (i32.const 0))
      (loop $max
        (local.set $m0 (f32x4.max (local.get $m0) (v128.bitselect (v128.load (local.get $p))
          (v128.const f32x4 -inf -inf -inf -inf) (i32x4.le_s (i32x4.splat (local.get $k)) (local.get $pos0)))))
        (local.set $m1 (f32x4.max (local.get $m1) (v128.bitselect (v128.load offset=16 (local.get $p))
          (v128.const f32x4 -inf -inf -inf -inf) (i32x4.le_s (i32x4.splat (local.get $k)) (local.get $pos1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br_if $max (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n))))
      (v128.store (local.get $pmax) (local.get $m0))
      (v128.store offset=16 (local.get $pmax) (local.get $m1))
      (local.set $m0 (f32x4.mul (local.get $m0) (local.get $vs)))
      (local.set $m1 (f32x4.mul (local.get $m1) (local.get $vs)))
      (local.set $a0 (v128.const i64x2 0 0)) (local.set $a1 (v128.const i64x2 0 0))
      (local.set $a2 (v128.const i64x2 0 0)) (local.set $a3 (v128.const i64x2 0 0))
      (local.set $p (local.get $st))
      (local.set $k (i32.const 0))
      (loop $exp
        (local.set $e0 (v128.and (call $vexp (f32x4.sub (f32x4.mul (v128.load (local.get $p)) (local.get $vs)) (local.get $m0)))
          (i32x4.le_s (i32x4.splat (local.get $k)) (local.get $pos0))))
        (local.set $e1 (v128.and (call $vexp (f32x4.sub (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $vs)) (local.get $m1)))
          (i32x4.le_s (i32x4.splat (local.get $k)) (local.get $pos1))))
        (v128.store (local.get $p) (local.get $e0))
        (v128.store offset=16 (local.get $p) (local.get $e1))
        (local.set $a0 (f64x2.add (local.get $a0) (f64x2.promote_low_f32x4 (local.get $e0))))
        (local.set $a1 (f64x2.add (local.get $a1) (f64x2.promote_low_f32x4 (call $high (local.get $e0)))))
        (local.set $a2 (f64x2.add (local.get $a2) (f64x2.promote_low_f32x4 (local.get $e1))))
        (local.set $a3 (f64x2.add (local.get $a3) (f64x2.promote_low_f32x4 (call $high (local.get $e1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br_if $exp (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n))))
      (v128.store (local.get $psum) (local.get $a0))
      (v128.store offset=16 (local.get $psum) (local.get $a1))
      (v128.store offset=32 (local.get $psum) (local.get $a2))
      (v128.store offset=48 (local.get $psum) (local.get $a3))
      (local.set $st (local.get $p))
      (local.set $pmax (i32.add (local.get $pmax) (i32.const 32)))
      (local.set $psum (i32.add (local.get $psum) (i32.const 64)))
      (br_if $strips (i32.lt_s (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $r)))))

  ;; lanes 2, 3 of x in lanes 0, 1
  (func $high (param $x v128) (result v128)
    (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))

  ;; Backward through softmax, strips of queries q0 .. q0+r over n keys: over the raw scores at pt,
  ;; P = exp(scale·S - lse) on the visible keys (0 elsewhere); over dP at dpt, dS = P·(dP - D)·scale with
  ;; D = Σ_k P·dP (float64). lse: float32 per query at plse (ceil(r/8)·8 of them, finite).
  (func (export "attn_softmax_bwd") (param $pt i32) (param $dpt i32) (param $n i32) (param $r i32) (param $q0 i32)
        (param $scale f32) (param $plse i32)
    (local $j i32) (local $k i32) (local $p i32) (local $d i32) (local $vs v128) (local $pos0 v128) (local $pos1 v128)
    (local $l0 v128) (local $l1 v128) (local $e0 v128) (local $e1 v128) (local $g0 v128) (local $g1 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $vs (f32x4.splat (local.get $scale)))
    (loop $strips
      (local.set $pos0 (i32x4.add (i32x4.splat (i32.add (local.get $q0) (local.get $j))) (v128.const i32x4 0 1 2 3)))
      (local.set $pos1 (i32x4.add (local.get $pos0) (v128.const i32x4 4 4 4 4)))
      (local.set $l0 (v128.load (local.get $plse)))
      (local.set $l1 (v128.load offset=16 (local.get $plse)))
      (local.set $a0 (v128.const i64x2 0 0)) (local.set $a1 (v128.const i64x2 0 0))
      (local.set $a2 (v128.const i64x2 0 0)) (local.set $a3 (v128.const i64x2 0 0))
      (local.set $p (local.get $pt))
      (local.set $d (local.get $dpt))
      (local.set $k (i32.const 0))
      (loop $probs
        (local.set $e0 (v128.and (call $vexp (f32x4.sub (f32x4.mul (v128.load (local.get $p)) (local.get $vs)) (local.get $l0)))
          (i32x4.le_s (i32x4.splat (local.get $k)) (local.get $pos0))))
        (local.set $e1 (v128.and (call $vexp (f32x4.sub (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $vs)) (local.get $l1)))
          (i32x4.le_s (i32x4.splat (local.get $k)) (local.get $pos1))))
        (v128.store (local.get $p) (local.get $e0))
        (v128.store offset=16 (local.get $p) (local.get $e1))
        (local.set $g0 (v128.load (local.get $d)))
        (local.set $g1 (v128.load offset=16 (local.get $d)))
        (local.set $a0 (f64x2.add (local.get $a0)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $e0)) (f64x2.promote_low_f32x4 (local.get $g0)))))
        (local.set $a1 (f64x2.add (local.get $a1)
          (f64x2.mul (f64x2.promote_low_f32x4 (call $high (local.get $e0))) (f64x2.promote_low_f32x4 (call $high (local.get $g0))))))
        (local.set $a2 (f64x2.add (local.get $a2)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $e1)) (f64x2.promote_low_f32x4 (local.get $g1)))))
        (local.set $a3 (f64x2.add (local.get $a3)
          (f64x2.mul (f64x2.promote_low_f32x4 (call $high (local.get $e1))) (f64x2.promote_low_f32x4 (call $high (local.get $g1))))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 32)))
        (br_if $probs (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n))))
      ;; D of the 8 queries as two float32 vectors
      (local.set $a0 (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
        (f32x4.demote_f64x2_zero (local.get $a0)) (f32x4.demote_f64x2_zero (local.get $a1))))
      (local.set $a2 (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
        (f32x4.demote_f64x2_zero (local.get $a2)) (f32x4.demote_f64x2_zero (local.get $a3))))
      (local.set $p (local.get $pt))
      (local.set $d (local.get $dpt))
      (local.set $k (i32.const 0))
      (loop $grads
        (v128.store (local.get $d) (f32x4.mul (f32x4.mul (v128.load (local.get $p))
          (f32x4.sub (v128.load (local.get $d)) (local.get $a0))) (local.get $vs)))
        (v128.store offset=16 (local.get $d) (f32x4.mul (f32x4.mul (v128.load offset=16 (local.get $p))
          (f32x4.sub (v128.load offset=16 (local.get $d)) (local.get $a2))) (local.get $vs)))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 32)))
        (br_if $grads (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n))))
      (local.set $pt (local.get $p))
      (local.set $dpt (local.get $d))
      (local.set $plse (i32.add (local.get $plse) (i32.const 32)))
      (br_if $strips (i32.lt_s (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $r)))))

  ;; Query strips → key panels: the strips of queries 0 .. r over n keys at src become ceil(n/8) panels of
  ;; (r × 8) at dst, query-major (panel kp at dst + kp·r floats holds keys kp .. kp+7), the B panels of a product
  ;; over queries. Only rows q < r are written. The last panel's keys past n are read past their strip (the caller
  ;; leaves 64 floats of slack after src) and land in columns gemm_block ignores.
  (func (export "strips_to_panels") (param $src i32) (param $n i32) (param $r i32) (param $dst i32)
    (local $kp i32) (local $qp i32) (local $s i32) (local $d i32) (local $rows i32)
    (loop $keys
      (local.set $qp (i32.const 0))
      (loop $queries
        (local.set $s (i32.add (local.get $src)
          (i32.shl (i32.add (i32.mul (local.get $qp) (local.get $n)) (i32.shl (local.get $kp) (i32.const 3))) (i32.const 2))))
        (local.set $d (i32.add (local.get $dst)
          (i32.shl (i32.add (i32.mul (local.get $kp) (local.get $r)) (i32.shl (local.get $qp) (i32.const 3))) (i32.const 2))))
        (local.set $rows (i32.sub (local.get $r) (local.get $qp)))
        (call $t4 (local.get $s) (local.get $d) (local.get $rows))                                        ;; keys 0-3, queries 0-3
        (call $t4 (i32.add (local.get $s) (i32.const 128)) (i32.add (local.get $d) (i32.const 16)) (local.get $rows))   ;; keys 4-7
        (if (i32.gt_s (local.get $rows) (i32.const 4)) (then                                               ;; queries 4-7
          (call $t4 (i32.add (local.get $s) (i32.const 16)) (i32.add (local.get $d) (i32.const 128))
            (i32.sub (local.get $rows) (i32.const 4)))
          (call $t4 (i32.add (local.get $s) (i32.const 144)) (i32.add (local.get $d) (i32.const 144))
            (i32.sub (local.get $rows) (i32.const 4)))))
        (br_if $queries (i32.lt_s (local.tee $qp (i32.add (local.get $qp) (i32.const 8))) (local.get $r))))
      (br_if $keys (i32.lt_s (local.tee $kp (i32.add (local.get $kp) (i32.const 8))) (local.get $n)))))

  ;; 4 × 4 transpose: rows of 4 floats at s, s+32, s+64, s+96 → rows at d, d+32, ... (only the first `rows` written)
  (func $t4 (param $s i32) (param $d i32) (param $rows i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $u0 v128) (local $u1 v128) (local $u2 v128) (local $u3 v128)
    (local.set $v0 (v128.load (local.get $s)))
    (local.set $v1 (v128.load offset=32 (local.get $s)))
    (local.set $v2 (v128.load offset=64 (local.get $s)))
    (local.set $v3 (v128.load offset=96 (local.get $s)))
    (local.set $u0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))     ;; v0.0 v1.0 v0.1 v1.1
    (local.set $u1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
    (local.set $u2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1))) ;; v0.2 v1.2 v0.3 v1.3
    (local.set $u3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
    (v128.store (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u0) (local.get $u1)))
    (if (i32.gt_s (local.get $rows) (i32.const 1)) (then
      (v128.store offset=32 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u0) (local.get $u1)))))
    (if (i32.gt_s (local.get $rows) (i32.const 2)) (then
      (v128.store offset=64 (local.get $d)
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u2) (local.get $u3)))))
    (if (i32.gt_s (local.get $rows) (i32.const 3)) (then
      (v128.store offset=96 (local.get $d)
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u2) (local.get $u3))))))
