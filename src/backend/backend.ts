// The Backend contract: memory plus every forward/backward op, called in order by the model (no autograd); a
// backend owns where tensors live. Buffers are float32 unless IntTensor; `out` aliases an input only where stated.
// Shape glossary (used in every shape comment of the project):
//   B = batch (sequences per micro-batch)   T = time (tokens per sequence)   N = rows, usually B·T
//   C = channels (model width)              OC = output channels of a matmul
//   NH = query heads   KVH = key/value heads (NH % KVH == 0)   HS = head size (C / NH)
//   QKV = (NH + 2·KVH)·HS, the fused q|k|v row: q heads, then k heads, then v heads
//   H = MLP hidden size   V = vocabulary   Vp = padded vocabulary (multiple of 128)   L = layers

/** An opaque float32 tensor owned by a backend (a view into a larger buffer is a Tensor too). */
export interface Tensor { readonly length: number; readonly __tensor: 'f32' }
/** An opaque int32 tensor (token ids, targets). */
export interface IntTensor { readonly length: number; readonly __tensor: 'i32' }

/**
 * A storage hint for alloc. 'compute': activation-like values (matmul inputs/outputs, their gradients) that a
 * backend may keep at reduced precision (bf16 on CUDA, with f32 arithmetic inside every op); 'full' (default):
 * float32 (parameters, optimizer state, statistics, the residual stream). upload/download always speak float32;
 * the CPU backend ignores the hint.
 */
export interface AllocOptions { precision?: 'full' | 'compute' }

/** The rotation of ropeForward (angle (posStart + t)·theta^(-2i/HS)), for ops that fold it in. */
export interface RopeArgs { theta: number; posStart: number }

/** Elements [offset, offset + length) of a tensor. */
export interface Span { offset: number; length: number }

/** [0, n) cut at the noDecay spans: each piece with its weight decay. Throws on unsorted, overlapping or out-of-range
 *  spans (a caller bug). Backends that update piece by piece use it; the rest check with it. */
export function decayPieces(n: number, noDecay: readonly Span[] | undefined, weightDecay: number): (Span & { weightDecay: number })[] {
  const out: (Span & { weightDecay: number })[] = []
  let at = 0
  for (const s of noDecay ?? []) {
    if (!(Number.isSafeInteger(s.offset) && Number.isSafeInteger(s.length) && s.offset >= at && s.length >= 0 && s.offset + s.length <= n)) {
      throw new Error(`adamwUpdate: noDecay span ${JSON.stringify(s)} is unsorted, overlapping or outside [0, ${n})`)
    }
    if (s.offset > at) out.push({ offset: at, length: s.offset - at, weightDecay })
    if (s.length > 0) out.push({ offset: s.offset, length: s.length, weightDecay: 0 })
    at = s.offset + s.length
  }
  if (at < n || n === 0) out.push({ offset: at, length: n - at, weightDecay })
  return out
}

export interface AdamWOptions {
  lr: number
  beta1: number
  beta2: number
  eps: number
  weightDecay: number   // decoupled: param -= lr·wd·param (0 for norms and biases)
  noDecay?: readonly Span[]   // spans of the tensors (sorted, disjoint) updated with weightDecay 0: one call then
                              // covers a whole flat parameter buffer, norms and biases included
  step: number          // t, counted from 1, for bias correction
  gradScale: number     // gradients are multiplied by this first (global-norm clipping); 1 = none
}

// ---- data parallelism ----------------------------------------------------------------------------------
/** How data-parallel ranks share results (src/train/collective.ts has the host implementation, launch.ts the ranks). */
export interface Collective {
  readonly rank: number
  readonly world: number
  /** t = Σ over ranks of t, in place; every rank ends with the same values. */
  allReduceSum(t: Tensor): Promise<void>
  /** Σ over ranks of each of `values` (small: losses, counts, flags), in float64. */
  sumHost(values: readonly number[]): Promise<number[]>
  /** Rank 0's bytes on every rank (others pass null). */
  broadcast(bytes: Uint8Array | null): Promise<Uint8Array>
  /** For the start line: how tensors are summed (e.g. NCCL and its library). */
  describe(): string
  /** Frees what it holds (an NCCL communicator), after a run that ended well; a failed run just exits. */
  close(): void
}

// Gradient convention (llm.c's): every backward op ACCUMULATES (+=) into each gradient it writes (dinp, dweight,
// ...); the model zeroes gradient buffers when a step starts. Exceptions: crossEntropyBackward overwrites dlogits,
// and so does crossEntropyForward given a dlossScale.
export interface Backend {
  readonly name: string
  /** One line for humans at start: the device or kernels and threads in use. */
  describe?(): string
  /** The device's spec dense peak FLOP/s at the precision its matmuls run in, for MFU; null (or absent) when unknown. */
  peakFlops?(): number | null

  // ---- memory -------------------------------------------------------------------------------------
  alloc(n: number, opts?: AllocOptions): Tensor   // zero-filled
  allocInt(n: number): IntTensor            // zero-filled
  view(t: Tensor, offset: number, length: number): Tensor
  upload(dst: Tensor, src: Float32Array): void
  uploadInt(dst: IntTensor, src: Int32Array): void
  download(src: Tensor): Float32Array       // a copy
  zero(t: Tensor): void
  copy(dst: Tensor, src: Tensor): void
  sum(t: Tensor): number                    // float64 accumulation on the host side of the result
  sumSquares(t: Tensor): number             // for the global gradient norm
  free?(t: Tensor | IntTensor): void
  /** A device-side collective for data-parallel ranks (CUDA: NCCL), set up over the host one (which can carry
   *  its bootstrap bytes); absent: the host collective carries the tensors. */
  openCollective?(host: Collective): Promise<Collective>

  // ---- embeddings ---------------------------------------------------------------------------------
  // out: (B,T,C)   tokens: (B,T)   wte: (Vp,C)   wpe: (maxT,C) or null (RoPE models)
  // out[b,t] = wte[tokens[b,t]] + wpe[posStart + t]
  encoderForward(out: Tensor, tokens: IntTensor, wte: Tensor, wpe: Tensor | null,
                 B: number, T: number, C: number, posStart: number): void
  encoderBackward(dwte: Tensor, dwpe: Tensor | null, dout: Tensor, tokens: IntTensor,
                  B: number, T: number, C: number): void

  // ---- normalization ------------------------------------------------------------------------------
  // inp, out: (N,C)   weight, bias: (C)   mean, rstd: (N) saved for backward
  layernormForward(out: Tensor, mean: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, bias: Tensor,
                   N: number, C: number, eps: number): void
  layernormBackward(dinp: Tensor, dweight: Tensor, dbias: Tensor, dout: Tensor, inp: Tensor, weight: Tensor,
                    mean: Tensor, rstd: Tensor, N: number, C: number): void
  // inp, out: (N,C)   weight: (C)   rstd: (N) saved for backward;  out = inp · rstd · weight
  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, N: number, C: number, eps: number): void
  rmsnormBackward(dinp: Tensor, dweight: Tensor, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor,
                  N: number, C: number): void
  // The residual add fused with the next norm: res = a + b, then out = norm(res), in one pass over the rows.
  // Equals residualForward(res, a, b) followed by the norm's forward on res (the statistics read res as stored).
  // res, out, a, b: (N,C)   weight, bias: (C)   mean, rstd: (N) saved for backward.   res may alias a or b.
  residualRmsnormForward(res: Tensor, out: Tensor, rstd: Tensor, a: Tensor, b: Tensor, weight: Tensor,
                         N: number, C: number, eps: number): void
  residualLayernormForward(res: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, a: Tensor, b: Tensor, weight: Tensor,
                           bias: Tensor, N: number, C: number, eps: number): void

  // ---- matmul -------------------------------------------------------------------------------------
  // out: (N,OC) = inp: (N,C) · weight: (OC,C)ᵀ + bias: (OC) (bias may be null). PyTorch Linear layout.
  matmulForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null, N: number, C: number, OC: number): void
  // dinp: (N,C) (null to skip)   dweight: (OC,C)   dbias: (OC) or null   dout: (N,OC)
  matmulBackward(dinp: Tensor | null, dweight: Tensor, dbias: Tensor | null, dout: Tensor, inp: Tensor,
                 weight: Tensor, N: number, C: number, OC: number): void

  // ---- rotary position embedding ------------------------------------------------------------------
  // qkv, out: (B,T,QKV). Rotates every q and k head of token t by angle (posStart + t)·theta^(-2i/HS),
  // pairing dimension i with i + HS/2 (Hugging Face's rotate-half); v is copied. out may alias qkv.
  ropeForward(out: Tensor, qkv: Tensor, B: number, T: number, NH: number, KVH: number, HS: number,
              theta: number, posStart: number): void
  // dqkv += Rᵀ·dout on q and k, += dout on v
  ropeBackward(dqkv: Tensor, dout: Tensor, B: number, T: number, NH: number, KVH: number, HS: number,
               theta: number, posStart: number): void

  // ---- attention ----------------------------------------------------------------------------------
  // qkv: (B,T,QKV)   out: (B,T,NH·HS)   lse: (B,NH,T) log-sum-exp of each softmax row, saved for backward.
  // Causal, scale 1/sqrt(HS); query head h reads K/V head floor(h / (NH/KVH)). Never needs a T×T buffer
  // in the contract (a backend may use one internally).
  attentionForward(out: Tensor, lse: Tensor, qkv: Tensor, B: number, T: number, NH: number, KVH: number, HS: number): void
  // dqkv: (B,T,QKV) accumulated;  dout, out: (B,T,NH·HS). With rope (the arguments ropeForward got), dqkv receives
  // the gradient of the q|k|v rows BEFORE RoPE: ropeBackward folded in (a backend may apply it as it stores dq, dk).
  attentionBackward(dqkv: Tensor, dout: Tensor, qkv: Tensor, out: Tensor, lse: Tensor,
                    B: number, T: number, NH: number, KVH: number, HS: number, rope?: RopeArgs): void
  // Inference with a key/value cache (sampling). cache: (B,Tmax,QKV) holds the rope'd q|k|v rows of positions
  // [0, posStart+Tq); out: (B,Tq,NH·HS) = causal attention of the queries at positions [posStart, posStart+Tq)
  // over keys/values [0, query position]. With posStart = 0 and Tq = Tmax it equals attentionForward.
  attentionInference(out: Tensor, cache: Tensor, B: number, Tq: number, posStart: number, Tmax: number,
                     NH: number, KVH: number, HS: number): void

  // ---- MLP activations ----------------------------------------------------------------------------
  // GELU, tanh approximation.  inp, out: (n)
  geluForward(out: Tensor, inp: Tensor, n: number): void
  geluBackward(dinp: Tensor, dout: Tensor, inp: Tensor, n: number): void
  // SwiGLU.  inp: (N,2H) = [gate | up] per row   out: (N,H) = silu(gate) · up
  swigluForward(out: Tensor, inp: Tensor, N: number, H: number): void
  swigluBackward(dinp: Tensor, dout: Tensor, inp: Tensor, N: number, H: number): void

  // ---- residual -----------------------------------------------------------------------------------
  // out = a + b, all (n). out may alias a or b. (Its backward is the identity: the model passes the
  // same gradient to both branches, which the accumulate convention makes free.)
  residualForward(out: Tensor, a: Tensor, b: Tensor, n: number): void

  // ---- classifier ---------------------------------------------------------------------------------
  // logits, probs: (N,Vp)   targets: (N)   losses: (N)
  // Softmax over the first V columns only (padded columns get probability 0); losses[i] = -log probs[i, t_i].
  // A target < 0 marks an ignored position: loss 0, gradient 0. probs may alias logits.
  // With dlossScale (training's fused classifier) probs receives what crossEntropyBackward would then write,
  // dlogits = (softmax - onehot(target)) · dlossScale, in the same pass: the probabilities are never stored.
  crossEntropyForward(losses: Tensor, probs: Tensor, logits: Tensor, targets: IntTensor, N: number, V: number, Vp: number,
                      dlossScale?: number): void
  // dlogits = (probs - onehot(target)) · dlossScale on real columns, 0 on padded columns and ignored rows.
  // OVERWRITES dlogits, which may alias probs.
  crossEntropyBackward(dlogits: Tensor, probs: Tensor, targets: IntTensor, dlossScale: number,
                       N: number, V: number, Vp: number): void

  // ---- optimizer ----------------------------------------------------------------------------------
  // params, grads, m, v: (n), all the same length. PyTorch AdamW semantics:
  //   g = grad·gradScale;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
  //   param -= lr·(m̂ / (sqrt(v̂) + eps) + weightDecay·param)   with m̂ = m/(1-β1^t), v̂ = v/(1-β2^t)
  adamwUpdate(params: Tensor, grads: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void
}
