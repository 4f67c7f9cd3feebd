;; WebAssembly SIMD kernels of the CPU backend (compiled by scripts/build-wasm.mjs into kernels-wasm.ts, with the
;; functions of gemm.wat and attention.wat spliced into this module).
;; Softmax helpers: a vectorized exp (range reduction by ln 2, degree-7 Taylor polynomial) with float64 sums;
;; activations; AdamW. All pointers are byte addresses into this memory; sizes and strides count floats.
(module
  (memory (export "memory") 1)

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
