;; GEMM kernels of the CPU backend: functions only, spliced into kernels.wat's module by scripts/build-wasm.mjs.
;; The BLIS scheme: JS copies a block of A and of B into this memory; pack_a_* / pack_b_* reorder them into 4-row and
;; 8-column panels (zero-padded), and gemm_block runs the 4×8 f32x4 micro-kernel over every (row panel, column panel)
;; pair, accumulating into a row-major C block. 4×8 measured fastest in V8 (37 GFLOP/s vs 27 for 4×16 and 25 for 6×8
;; on a loaded Node 20: beyond ~11 live v128 values it spills; unrolling k lost too; 5×8 and 6×8 again on 2026-11-26).
;; scripts/build-wasm.mjs also builds the module with the micro-kernel's eight f32x4.add(acc, f32x4.mul(a, b)) as
;; f32x4.relaxed_madd: keep them written so. On a quiet AVX2+FMA core in Node 22 the micro-kernel alone gives 41-42
;; GFLOP/s plain and 52-54 with relaxed_madd (bench/RESULTS.md, 2026-11-25).
;; All pointers are byte addresses into this memory; sizes and strides count floats.

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

