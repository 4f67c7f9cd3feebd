;; WebAssembly SIMD kernels of the CPU backend (compiled by scripts/build-wasm.mjs into kernels-wasm.ts).
;; GEMM: the BLIS scheme. JS copies a block of A and of B into this memory; pack_a_* / pack_b_* reorder them
;; into 4-row and 8-column panels (zero-padded), and gemm_block runs the 4×8 f32x4 micro-kernel over every
;; (row panel, column panel) pair, accumulating into a row-major C block. 4×8 measured fastest in V8 (37 GFLOP/s
;; vs 27 for 4×16 and 25 for 6×8 on a loaded Node 20: beyond ~11 live v128 values it spills; unrolling k lost too).
;; scripts/build-wasm.mjs also builds this module with the micro-kernel's eight f32x4.add(acc, f32x4.mul(a, b))
;; as f32x4.relaxed_madd: keep them written so. On a quiet AVX2+FMA core in Node 22 the micro-kernel alone gives
;; 41-42 GFLOP/s plain and 52-54 with relaxed_madd (bench/RESULTS.md, 2026-11-25).
;; Softmax helpers: a vectorized exp (range reduction by ln 2, degree-7 Taylor polynomial) with float64 sums.
;; All pointers are byte addresses into this memory; sizes and strides count floats.
(module
  (memory (export "memory") 1)

  ;; ---- micro-kernel: C[0..4, 0..8] += Ap (kc × 4, k-major) · Bp (kc × 8, k-major) -----------------
  ;; C rows at c, c + ldc, ... (ldc in bytes). 8 accumulators, 2 B vectors and one A broadcast per k.
  (func $micro (param $ap i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $kc i32)
    (local $a v128) (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local $b0 v128) (local $b1 v128)
    (local $x00 v128) (local $x01 v128)
    (local $x10 v128) (local $x11 v128)
    (local $x20 v128) (local $x21 v128)
    (local $x30 v128) (local $x31 v128)
    (local.set $c1 (i32.add (local.get $c) (local.get $ldc)))
    (local.set $c2 (i32.add (local.get $c1) (local.get $ldc)))
    (local.set $c3 (i32.add (local.get $c2) (local.get $ldc)))
    (loop $k
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $a (v128.load32_splat (local.get $ap)))
      (local.set $x00 (f32x4.add (local.get $x00) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $x01 (f32x4.add (local.get $x01) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=4 (local.get $ap)))
      (local.set $x10 (f32x4.add (local.get $x10) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $x11 (f32x4.add (local.get $x11) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=8 (local.get $ap)))
      (local.set $x20 (f32x4.add (local.get $x20) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $x21 (f32x4.add (local.get $x21) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=12 (local.get $ap)))
      (local.set $x30 (f32x4.add (local.get $x30) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $x31 (f32x4.add (local.get $x31) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br_if $k (local.tee $kc (i32.sub (local.get $kc) (i32.const 1)))))
    (v128.store (local.get $c) (f32x4.add (v128.load (local.get $c)) (local.get $x00)))
    (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=16 (local.get $c)) (local.get $x01)))
    (v128.store (local.get $c1) (f32x4.add (v128.load (local.get $c1)) (local.get $x10)))
    (v128.store offset=16 (local.get $c1) (f32x4.add (v128.load offset=16 (local.get $c1)) (local.get $x11)))
    (v128.store (local.get $c2) (f32x4.add (v128.load (local.get $c2)) (local.get $x20)))
    (v128.store offset=16 (local.get $c2) (f32x4.add (v128.load offset=16 (local.get $c2)) (local.get $x21)))
    (v128.store (local.get $c3) (f32x4.add (v128.load (local.get $c3)) (local.get $x30)))
    (v128.store offset=16 (local.get $c3) (f32x4.add (v128.load offset=16 (local.get $c3)) (local.get $x31))))

  ;; ---- gemm_block: C (mc × nc, row stride ldc floats) += Ap · Bp ----------------------------------------
  ;; Ap: ceil(mc/4) panels of (kc × 4); Bp: ceil(nc/8) panels of (kc × 8); tmp: a 4 × 8 scratch tile for
  ;; the ragged edges (computed there, then only the valid part is added into C). kc >= 1.
  (func (export "gemm_block") (param $ap i32) (param $bp i32) (param $c i32) (param $ldc i32)
        (param $mc i32) (param $nc i32) (param $kc i32) (param $tmp i32)
    (local $i i32) (local $j i32) (local $ldcb i32) (local $apan i32) (local $bpan i32) (local $cij i32)
    (local $rows i32) (local $cols i32)
    (local.set $ldcb (i32.shl (local.get $ldc) (i32.const 2)))
    (local.set $j (i32.const 0))
    (loop $jl
      (local.set $bpan (i32.add (local.get $bp) (i32.shl (i32.mul (local.get $j) (local.get $kc)) (i32.const 2))))
      (local.set $cols (i32.sub (local.get $nc) (local.get $j)))
      (local.set $i (i32.const 0))
      (loop $il
        (local.set $apan (i32.add (local.get $ap) (i32.shl (i32.mul (local.get $i) (local.get $kc)) (i32.const 2))))
        (local.set $cij (i32.add (local.get $c)
          (i32.shl (i32.add (i32.mul (local.get $i) (local.get $ldc)) (local.get $j)) (i32.const 2))))
        (local.set $rows (i32.sub (local.get $mc) (local.get $i)))
        (if (i32.and (i32.ge_s (local.get $rows) (i32.const 4)) (i32.ge_s (local.get $cols) (i32.const 8)))
          (then (call $micro (local.get $apan) (local.get $bpan) (local.get $cij) (local.get $ldcb) (local.get $kc)))
          (else
            (memory.fill (local.get $tmp) (i32.const 0) (i32.const 128))
            (call $micro (local.get $apan) (local.get $bpan) (local.get $tmp) (i32.const 32) (local.get $kc))
            (call $add_tile (local.get $cij) (local.get $ldcb) (local.get $tmp)
              (select (local.get $rows) (i32.const 4) (i32.lt_s (local.get $rows) (i32.const 4)))
              (select (local.get $cols) (i32.const 8) (i32.lt_s (local.get $cols) (i32.const 8))))))
        (br_if $il (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $mc))))
      (br_if $jl (i32.lt_s (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $nc)))))

  ;; C[r, q] += tmp[r, q] for r < rows, q < cols (tmp rows are 8 floats)
  (func $add_tile (param $c i32) (param $ldcb i32) (param $tmp i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $q i32) (local $dst i32) (local $src i32)
    (loop $rl
      (local.set $dst (i32.add (local.get $c) (i32.mul (local.get $r) (local.get $ldcb))))
      (local.set $src (i32.add (local.get $tmp) (i32.mul (local.get $r) (i32.const 32))))
      (local.set $q (i32.const 0))
      (loop $ql
        (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br_if $ql (i32.lt_s (local.tee $q (i32.add (local.get $q) (i32.const 1))) (local.get $cols))))
      (br_if $rl (i32.lt_s (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rows)))))

  ;; ---- packing ---------------------------------------------------------------------------------------------
  ;; pack_a_n: A stored (mc, kc) row-major with row stride lda → panels of 4 rows, each (kc × 4), zero-padded.
  (func (export "pack_a_n") (param $src i32) (param $lda i32) (param $mc i32) (param $kc i32) (param $dst i32)
    (call $pack_rows (local.get $src) (local.get $lda) (local.get $mc) (local.get $kc) (local.get $dst) (i32.const 4)))

  ;; pack_a_t: A stored transposed, (kc, mc) row-major with row stride lda → the same panels as pack_a_n.
  (func (export "pack_a_t") (param $src i32) (param $lda i32) (param $mc i32) (param $kc i32) (param $dst i32)
    (call $pack_t (local.get $src) (local.get $lda) (local.get $mc) (local.get $kc) (local.get $dst) (i32.const 4)))

  ;; pack_b_n: B stored (kc, nc) row-major with row stride ldb → panels of 8 columns, each (kc × 8).
  (func (export "pack_b_n") (param $src i32) (param $ldb i32) (param $nc i32) (param $kc i32) (param $dst i32)
    (call $pack_t (local.get $src) (local.get $ldb) (local.get $nc) (local.get $kc) (local.get $dst) (i32.const 8)))

  ;; pack_b_t: B stored transposed, (nc, kc) row-major with row stride ldb → the same panels as pack_b_n.
  (func (export "pack_b_t") (param $src i32) (param $ldb i32) (param $nc i32) (param $kc i32) (param $dst i32)
    (call $pack_rows (local.get $src) (local.get $ldb) (local.get $nc) (local.get $kc) (local.get $dst) (i32.const 8)))

  ;; (n, kc) row-major, stride ld → panels of w rows (w = 4 or 8), each (kc × w), k-major: a transpose. Complete
  ;; panels go 4 rows × 4 k at a time through $tr4 (whole vectors; 4-5× the element loop), the last kc % 4
  ;; columns and a ragged last panel element by element, zero-padded.
  (func $pack_rows (param $src i32) (param $ld i32) (param $n i32) (param $kc i32) (param $dst i32) (param $w i32)
    (local $j i32) (local $k i32) (local $k4 i32) (local $r i32) (local $ldb i32) (local $wb i32) (local $row i32)
    (local $s i32) (local $d i32)
    (local.set $ldb (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $wb (i32.shl (local.get $w) (i32.const 2)))
    (local.set $k4 (i32.and (local.get $kc) (i32.const -4)))
    (loop $jl
      (local.set $k (i32.const 0))
      (if (i32.le_s (i32.add (local.get $j) (local.get $w)) (local.get $n))
        (then
          (local.set $r (i32.const 0))
          (loop $rl   ;; rows j+r .. j+r+3 of this panel → floats r .. r+3 of each k's w
            (local.set $s (i32.add (local.get $src) (i32.mul (i32.add (local.get $j) (local.get $r)) (local.get $ldb))))
            (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2))))
            (local.set $k (i32.const 0))
            (block $kdone (loop $kl
              (br_if $kdone (i32.ge_s (local.get $k) (local.get $k4)))
              (call $tr4 (local.get $s) (local.get $ldb) (local.get $d) (local.get $wb))
              (local.set $s (i32.add (local.get $s) (i32.const 16)))
              (local.set $d (i32.add (local.get $d) (i32.shl (local.get $wb) (i32.const 2))))
              (local.set $k (i32.add (local.get $k) (i32.const 4)))
              (br $kl)))
            (br_if $rl (i32.lt_s (local.tee $r (i32.add (local.get $r) (i32.const 4))) (local.get $w))))))
      ;; what is left: k from $k (k4 for a complete panel, else 0) to kc, element by element
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $k) (local.get $wb))))
      (block $tdone (loop $kl
        (br_if $tdone (i32.ge_s (local.get $k) (local.get $kc)))
        (local.set $r (i32.const 0))
        (loop $rl
          (local.set $row (i32.add (local.get $j) (local.get $r)))
          (f32.store (local.get $d)
            (if (result f32) (i32.lt_s (local.get $row) (local.get $n))
              (then (f32.load (i32.add (local.get $src)
                (i32.add (i32.mul (local.get $row) (local.get $ldb)) (i32.shl (local.get $k) (i32.const 2))))))
              (else (f32.const 0))))
          (local.set $d (i32.add (local.get $d) (i32.const 4)))
          (br_if $rl (i32.lt_s (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $w))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $kl)))
      (local.set $dst (i32.add (local.get $dst) (i32.mul (local.get $kc) (local.get $wb))))
      (br_if $jl (i32.lt_s (local.tee $j (i32.add (local.get $j) (local.get $w))) (local.get $n)))))

  ;; 4 × 4 transpose: rows s, s + ld, s + 2ld, s + 3ld (4 floats each) → columns at d, d + dld, d + 2dld, d + 3dld
  ;; (ld, dld in bytes). The shuffles are SSE's unpcklps / unpckhps / movlhps / movhlps.
  (func $tr4 (param $s i32) (param $ld i32) (param $d i32) (param $dld i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128) (local $t0 v128) (local $t1 v128)
    (local $t2 v128) (local $t3 v128)
    (local.set $r0 (v128.load (local.get $s)))
    (local.set $r1 (v128.load (local.tee $s (i32.add (local.get $s) (local.get $ld)))))
    (local.set $r2 (v128.load (local.tee $s (i32.add (local.get $s) (local.get $ld)))))
    (local.set $r3 (v128.load (i32.add (local.get $s) (local.get $ld))))
    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
    (v128.store (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
    (v128.store (local.tee $d (i32.add (local.get $d) (local.get $dld)))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
    (v128.store (local.tee $d (i32.add (local.get $d) (local.get $dld)))
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
    (v128.store (i32.add (local.get $d) (local.get $dld))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3))))

  ;; (kc, n) row-major, stride ld → panels of w columns (w = 4 or 8), each (kc × w): whole vectors when the
  ;; panel is complete, element by element with zero padding on the ragged last panel.
  (func $pack_t (param $src i32) (param $ld i32) (param $n i32) (param $kc i32) (param $dst i32) (param $w i32)
    (local $j i32) (local $k i32) (local $q i32) (local $s i32) (local $ldb i32)
    (local.set $ldb (i32.shl (local.get $ld) (i32.const 2)))
    (loop $jl
      (local.set $s (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $k (i32.const 0))
      (loop $kl
        (if (i32.le_s (i32.add (local.get $j) (local.get $w)) (local.get $n))
          (then
            (local.set $q (i32.const 0))
            (loop $ql
              (v128.store (i32.add (local.get $dst) (i32.shl (local.get $q) (i32.const 2)))
                (v128.load (i32.add (local.get $s) (i32.shl (local.get $q) (i32.const 2)))))
              (br_if $ql (i32.lt_s (local.tee $q (i32.add (local.get $q) (i32.const 4))) (local.get $w)))))
          (else
            (local.set $q (i32.const 0))
            (loop $ql
              (f32.store (i32.add (local.get $dst) (i32.shl (local.get $q) (i32.const 2)))
                (if (result f32) (i32.lt_s (i32.add (local.get $j) (local.get $q)) (local.get $n))
                  (then (f32.load (i32.add (local.get $s) (i32.shl (local.get $q) (i32.const 2)))))
                  (else (f32.const 0))))
              (br_if $ql (i32.lt_s (local.tee $q (i32.add (local.get $q) (i32.const 1))) (local.get $w))))))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $w) (i32.const 2))))
        (local.set $s (i32.add (local.get $s) (local.get $ldb)))
        (br_if $kl (i32.lt_s (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $kc))))
      (br_if $jl (i32.lt_s (local.tee $j (i32.add (local.get $j) (local.get $w))) (local.get $n)))))

  ;; ---- softmax helpers ---------------------------------------------------------------------------------------
  ;; exp(x) for x <= 88 (saturating above): x = n·ln2 + r, |r| <= ln2/2, exp(r) by its degree-7 Taylor polynomial (truncation
  ;; error < 6e-9, under float32 rounding), times 2^n built in the exponent bits. Lanes below -87 (and -inf) give
  ;; 0, NaN stays NaN. n = round(x·log2 e) comes from adding 1.5·2^23, whose float bits then hold n: their low 9
  ;; bits + 127, shifted into the exponent, are 2^n (n is in [-126, 127] after the clamp).
  (func $vexp (param $x0 v128) (result v128)
    (local $x v128) (local $y v128) (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.pmin (f32x4.pmax (local.get $x0) (v128.const f32x4 -87 -87 -87 -87)) (v128.const f32x4 88 88 88 88)))
    (local.set $y (f32x4.add (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504))
                             (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $n (f32x4.sub (local.get $y) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.98412698e-4 1.98412698e-4 1.98412698e-4 1.98412698e-4))          ;; 1/7!
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.38888889e-3 1.38888889e-3 1.38888889e-3 1.38888889e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.33333333e-3 8.33333333e-3 8.33333333e-3 8.33333333e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.16666667e-2 4.16666667e-2 4.16666667e-2 4.16666667e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.166666667 0.166666667 0.166666667 0.166666667)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (v128.andnot
      (f32x4.mul (local.get $p) (i32x4.shl (i32x4.add (local.get $y) (v128.const i32x4 127 127 127 127)) (i32.const 23)))
      (f32x4.lt (local.get $x0) (v128.const f32x4 -87 -87 -87 -87))))

  ;; max of p[0..n), n >= 1 (a NaN is skipped, like the JS reference's `x > max`; the exp then propagates it)
  (func (export "vmax") (param $p i32) (param $n i32) (result f32)
    (local $m v128) (local $end i32) (local $best f32) (local $x f32)
    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $m (f32x4.pmax (local.get $m) (v128.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l)))
    (local.set $best (f32.max (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
                              (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $x (f32.load (local.get $p)))
      (if (f32.gt (local.get $x) (local.get $best)) (then (local.set $best (local.get $x))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $t)))
    (local.get $best))

  ;; p[i] = exp(p[i]·scale - shift) for i < n; returns the sum in float64
  (func (export "vexp_sum") (param $p i32) (param $n i32) (param $scale f32) (param $shift f32) (result f64)
    (local $e v128) (local $acc v128) (local $end i32) (local $vs v128) (local $vh v128) (local $tail v128)
    (local.set $vs (f32x4.splat (local.get $scale)))
    (local.set $vh (f32x4.splat (local.get $shift)))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $e (call $vexp (f32x4.sub (f32x4.mul (v128.load (local.get $p)) (local.get $vs)) (local.get $vh))))
      (v128.store (local.get $p) (local.get $e))
      (local.set $acc (f64x2.add (local.get $acc) (f64x2.add (f64x2.promote_low_f32x4 (local.get $e))
        (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $e) (local.get $e))))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $tail (call $vexp (f32x4.splat (f32.sub (f32.mul (f32.load (local.get $p)) (local.get $scale)) (local.get $shift)))))
      (f32.store (local.get $p) (f32x4.extract_lane 0 (local.get $tail)))
      (local.set $acc (f64x2.add (local.get $acc) (f64x2.promote_low_f32x4
        (i8x16.shuffle 0 1 2 3 16 17 18 19 16 17 18 19 16 17 18 19 (local.get $tail) (v128.const i32x4 0 0 0 0)))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $t)))
    (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))

  ;; p[i] *= s for i < n
  (func (export "vscale") (param $p i32) (param $n i32) (param $s f32)
    (local $vs v128) (local $end i32)
    (local.set $vs (f32x4.splat (local.get $s)))
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (v128.store (local.get $p) (f32x4.mul (v128.load (local.get $p)) (local.get $vs)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tdone (loop $t
      (br_if $tdone (i32.ge_u (local.get $p) (local.get $end)))
      (f32.store (local.get $p) (f32.mul (f32.load (local.get $p)) (local.get $s)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $t))))

  ;; ---- activations: flat arrays, n a multiple of 4 (the caller pads) ------------------------------------------
  ;; 1 / (1 + exp(-x)), 0 and 1 at the extremes
  (func $sigmoid (param $x v128) (result v128)
    (f32x4.div (v128.const f32x4 1 1 1 1)
      (f32x4.add (v128.const f32x4 1 1 1 1) (call $vexp (f32x4.neg (local.get $x))))))

  ;; GELU (tanh form) as x·σ(2u), u = √(2/π)(x + 0.044715x³), since (1 + tanh u)/2 = σ(2u). out may alias x.
  (func (export "gelu_fwd") (param $out i32) (param $x i32) (param $n i32)
    (local $v v128) (local $end i32)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $v (v128.load (local.get $x)))
      (v128.store (local.get $out) (f32x4.mul (local.get $v) (call $sigmoid (call $gelu_2u (local.get $v)))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $l))))

  ;; 2u = 2·√(2/π)·(x + 0.044715·x³)
  (func $gelu_2u (param $v v128) (result v128)
    (f32x4.mul (v128.const f32x4 1.59576912 1.59576912 1.59576912 1.59576912)
      (f32x4.add (local.get $v) (f32x4.mul (v128.const f32x4 0.044715 0.044715 0.044715 0.044715)
        (f32x4.mul (local.get $v) (f32x4.mul (local.get $v) (local.get $v)))))))

  ;; dx += dout·(σ + 2x·σ(1-σ)·√(2/π)(1 + 3·0.044715x²)), σ = σ(2u) = 1/(1+e), e = exp(-2u), and 1-σ = e·σ
  ;; (not 1 - σ, which loses all its digits where σ ≈ 1 while the factor 2x·√(2/π)(...) reaches ~100)
  (func (export "gelu_bwd") (param $dx i32) (param $dout i32) (param $x i32) (param $n i32)
    (local $v v128) (local $e v128) (local $s v128) (local $end i32)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $v (v128.load (local.get $x)))
      (local.set $e (call $vexp (f32x4.neg (call $gelu_2u (local.get $v)))))
      (local.set $s (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $e))))
      (v128.store (local.get $dx) (f32x4.add (v128.load (local.get $dx)) (f32x4.mul (v128.load (local.get $dout))
        (f32x4.add (local.get $s)
          (f32x4.mul (f32x4.mul (f32x4.mul (local.get $v) (local.get $s)) (f32x4.mul (local.get $e) (local.get $s)))
            (f32x4.mul (v128.const f32x4 1.59576912 1.59576912 1.59576912 1.59576912)
              (f32x4.add (v128.const f32x4 1 1 1 1)
                (f32x4.mul (v128.const f32x4 0.134145 0.134145 0.134145 0.134145) (f32x4.mul (local.get $v) (local.get $v))))))))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $dx (i32.add (local.get $dx) (i32.const 16)))
      (local.set $dout (i32.add (local.get $dout) (i32.const 16)))
      (br $l))))

  ;; SwiGLU: out = g·σ(g)·u
  (func (export "swiglu_fwd") (param $out i32) (param $g i32) (param $u i32) (param $n i32)
    (local $v v128) (local $end i32)
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
      (local.set $v (v128.load (local.get $g)))
      (v128.store (local.get $out)
        (f32x4.mul (f32x4.mul (local.get $v) (call $sigmoid (local.get $v))) (v128.load (local.get $u))))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (local.set $u (i32.add (local.get $u) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $l))))

  ;; dg += d·u·σ·(1 + g(1-σ)),  du += d·g·σ,  σ = σ(g) = 1/(1+e), e = exp(-g), 1-σ = e·σ (as in gelu_bwd)
  (func (export "swiglu_bwd") (param $dg i32) (param $du i32) (param $dout i32) (param $g i32) (param $u i32) (param $n i32)
    (local $v v128) (local $e v128) (local $s v128) (local $d v128) (local $end i32)
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
      (local.set $v (v128.load (local.get $g)))
      (local.set $e (call $vexp (f32x4.neg (local.get $v))))
      (local.set $s (f32x4.div (v128.const f32x4 1 1 1 1) (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $e))))
      (local.set $d (v128.load (local.get $dout)))
      (v128.store (local.get $dg) (f32x4.add (v128.load (local.get $dg))
        (f32x4.mul (f32x4.mul (f32x4.mul (local.get $d) (v128.load (local.get $u))) (local.get $s))
          (f32x4.add (v128.const f32x4 1 1 1 1) (f32x4.mul (local.get $v) (f32x4.mul (local.get $e) (local.get $s)))))))
      (v128.store (local.get $du) (f32x4.add (v128.load (local.get $du))
        (f32x4.mul (local.get $d) (f32x4.mul (local.get $v) (local.get $s)))))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (local.set $u (i32.add (local.get $u) (i32.const 16)))
      (local.set $dg (i32.add (local.get $dg) (i32.const 16)))
      (local.set $du (i32.add (local.get $du) (i32.const 16)))
      (local.set $dout (i32.add (local.get $dout) (i32.const 16)))
      (br $l))))

  ;; ---- optimizer ----------------------------------------------------------------------------------------------
  ;; AdamW (PyTorch semantics, as ../adamw.ts) on flat arrays, n even, in float64 like the reference (two floats
  ;; at a time, rounded to float32 once when stored):
  ;; g = grad·gs; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²; p -= lr·((m/bc1) / (sqrt(v/bc2) + eps) + wd·p)
  (func (export "adamw") (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $lr f64) (param $b1 f64) (param $b2 f64) (param $eps f64) (param $wd f64) (param $bc1 f64) (param $bc2 f64) (param $gs f64)
    (local $end i32) (local $gv v128) (local $mv v128) (local $vv v128) (local $pv v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $gv (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $g))) (f64x2.splat (local.get $gs))))
      (local.set $mv (f64x2.add (f64x2.mul (f64x2.splat (local.get $b1)) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $m))))
        (f64x2.mul (f64x2.splat (f64.sub (f64.const 1) (local.get $b1))) (local.get $gv))))
      (local.set $vv (f64x2.add (f64x2.mul (f64x2.splat (local.get $b2)) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $v))))
        (f64x2.mul (f64x2.mul (f64x2.splat (f64.sub (f64.const 1) (local.get $b2))) (local.get $gv)) (local.get $gv))))
      (v128.store64_lane 0 (local.get $m) (f32x4.demote_f64x2_zero (local.get $mv)))
      (v128.store64_lane 0 (local.get $v) (f32x4.demote_f64x2_zero (local.get $vv)))
      (local.set $pv (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $p))))
      (v128.store64_lane 0 (local.get $p) (f32x4.demote_f64x2_zero (f64x2.sub (local.get $pv) (f64x2.mul (f64x2.splat (local.get $lr))
        (f64x2.add
          (f64x2.div (f64x2.div (local.get $mv) (f64x2.splat (local.get $bc1)))
            (f64x2.add (f64x2.sqrt (f64x2.div (local.get $vv) (f64x2.splat (local.get $bc2)))) (f64x2.splat (local.get $eps))))
          (f64x2.mul (f64x2.splat (local.get $wd)) (local.get $pv)))))))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $g (i32.add (local.get $g) (i32.const 8)))
      (local.set $m (i32.add (local.get $m) (i32.const 8)))
      (local.set $v (i32.add (local.get $v) (i32.const 8)))
      (br $l))))

  ;; Σ p[i]² in float64 (each square exact), n a multiple of 4
  (func (export "sumsq") (param $p i32) (param $n i32) (result f64)
    (local $end i32) (local $x v128) (local $lo v128) (local $hi v128) (local $acc v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $x (v128.load (local.get $p)))
      (local.set $lo (f64x2.promote_low_f32x4 (local.get $x)))
      (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))
      (local.set $acc (f64x2.add (local.get $acc)
        (f64x2.add (f64x2.mul (local.get $lo) (local.get $lo)) (f64x2.mul (local.get $hi) (local.get $hi)))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l)))
    (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
)
