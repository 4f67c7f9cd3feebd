// bench/cuda --profile beside PyTorch's: llm.ts's ops and PyTorch's kernels sorted into the same categories
// (bench/cuda-profile.ts, bench/profile-categories.json), the side-by-side table (hand-computed sums), and where the
// report prints it. The kernel names are PyTorch's on an H100 as torch.profiler reports them (FlashAttention 2,
// cuDNN SDPA, memory-efficient attention, cuBLAS, fused AdamW, foreach norms, Inductor's Triton kernels).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { EntryRuns, Result } from '../../bench/cuda-compare.js'
import { compareTable, kernelCategories, kernelCategory, kernelTable, opCategory, type KernelProfile } from '../../bench/cuda-profile.js'
import { parseRuns } from '../../bench/cuda-runs.js'
import { formatTable } from '../../bench/cuda-table.js'
import { profiledOps } from '../../src/backend/cuda/profile.js'

test('every op llm.ts profiles has a category, and each is one PyTorch\'s kernels are sorted into', () => {
  const names = new Set(kernelCategories().map(([c]) => c))
  for (const op of profiledOps) {
    const c = opCategory(op)
    assert.ok(names.has(c), `${op} → ${c}, not a category of bench/profile-categories.json`)
  }
  assert.equal(opCategory('matmulBackward'), 'matmul')
  assert.equal(opCategory('attentionInference'), 'attention forward')
  assert.equal(opCategory('residualRmsnormForward'), 'norm + residual')
  assert.equal(opCategory('sumSquares'), 'optimizer + grad norm')
  assert.equal(opCategory('somethingNew'), 'other')
})

test('PyTorch kernel names: each in its category, first match wins, unknown ones "other"', () => {
  const cases: [string, string][] = [
    ['void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 128, 4, false, false, cutlass::bfloat16_t, ' +
      'Flash_kernel_traits<64, 128, 128, 4, cutlass::bfloat16_t> >, false, true, false, false, true, true, false, false>' +
      '(pytorch_flash::Flash_fwd_params)', 'attention forward'],
    ['void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<64, 128, 128, 8, 2, 4, 2, ' +
      'false, false, cutlass::bfloat16_t, Flash_kernel_traits<64, 128, 128, 8, cutlass::bfloat16_t> >, false, true, false, ' +
      'false, false, true, false, false>(pytorch_flash::Flash_bwd_params)', 'attention backward'],
    ['void pytorch_flash::flash_bwd_dot_do_o_kernel<true, Flash_bwd_kernel_traits<64, 128, 128, 8, 2, 4, 2, false, false, ' +
      'cutlass::bfloat16_t, Flash_kernel_traits<64, 128, 128, 8, cutlass::bfloat16_t> > >(pytorch_flash::Flash_bwd_params)', 'attention backward'],
    ['void pytorch_flash::flash_bwd_convert_dq_kernel<Flash_bwd_kernel_traits<64, 128, 128, 8, 2, 4, 2, false, false, ' +
      'cutlass::bfloat16_t, Flash_kernel_traits<64, 128, 128, 8, cutlass::bfloat16_t> > >(pytorch_flash::Flash_bwd_params, int)', 'attention backward'],
    ['cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x64_4x1x1_kernel0_0', 'attention forward'],
    ['cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_7_64x64x64_4x1x1_kernel0_0', 'attention backward'],
    ['fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::bfloat16_t, ' +
      'cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)', 'attention forward'],
    ['fmha_cutlassB_bf16_aligned_64x64_k64_sm80(PyTorchMemEffAttention::AttentionBackwardKernel<cutlass::arch::Sm80, ' +
      'cutlass::bfloat16_t, true, false, true, 64, 64, 64, false>::Params)', 'attention backward'],
    ['nvjet_tst_256x128_64x4_2x1_v_bz_coopA_TNN', 'matmul'],
    ['sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_segment_k_off_kernel__5x_cublas', 'matmul'],
    ['void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_16x16_128x2_tn_align8>(cutlass_80_wmma_tensorop_' +
      'bf16_s161616gemm_bf16_16x16_128x2_tn_align8::Params)', 'matmul'],
    ['void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::' +
      'FusedOptimizerTensorListMetadata<4>, at::native::(anonymous namespace)::FusedAdamMathFunctor<float, 4, ' +
      '(at::native::ADAM_MODE)1, false>, double*, double, double, double, double, double, bool, float const*, float const*>' +
      '(at::native::(anonymous namespace)::FusedOptimizerTensorListMetadata<4>, ...)', 'optimizer + grad norm'],
    ['void at::native::lpnorm_cleanup<float, (at::native::NormType)1, float, float>(float const*, at::native::' +
      'TensorListAddresses, int)', 'optimizer + grad norm'],
    ['triton_red_fused__log_softmax__to_copy_view_0', 'classifier loss'],
    ['triton_poi_fused__log_softmax__log_softmax_backward_data_nll_loss_backward_1', 'classifier loss'],
    ['triton_poi_fused_mul_silu_3', 'MLP activation'],
    ['triton_poi_fused_add_mul_pow_tanh_5', 'MLP activation'],            // GELU (tanh): before the norms' pow
    ['triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_2', 'norm + residual'],
    ['triton_red_fused__to_copy_add_div_mul_pow_sum_9', 'norm + residual'],   // RMSNorm backward: no rsqrt
    ['triton_per_fused_add_native_layer_norm_native_layer_norm_backward_4', 'norm + residual'],
    ['triton_poi_fused_embedding_0', 'embedding'],
    ['triton_poi_fused_embedding_dense_backward_11', 'embedding'],
    ['triton_poi_fused_add_cat_mul_neg_slice_1', 'RoPE'],
    ['aten::cat', 'RoPE'],
    ['Memset (Device)', 'memory (zero, copy)'],
    ['Memcpy DtoD (Device -> Device)', 'memory (zero, copy)'],
    ['triton_poi_fused__to_copy_0', 'memory (zero, copy)'],
    ['void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >' +
      '(int, at::native::FillFunctor<float>, at::detail::Array<char*, 1>)', 'memory (zero, copy)'],
    ['void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, ' +
      'unsigned int, float, 4> >(at::native::ReduceOp<float, at::native::MeanOps<float, float, float, float>, unsigned int, float, 4>)', 'other'],
    ['aten::mm', 'matmul'],
    ['aten::_scaled_dot_product_flash_attention_for_cpu_backward', 'attention backward'],
  ]
  const rules = kernelCategories()
  for (const [name, want] of cases) assert.equal(kernelCategory(name, rules), want, name)
})

const torchProfile: KernelProfile = {
  steps: 5, unit: 'GPU time',
  categories: [{ op: 'matmul', calls: 52, ms: 14 }, { op: 'attention backward', calls: 36, ms: 3 }, { op: 'other', calls: 9, ms: 0.5 }],
  kernels: [{ op: 'nvjet_tst_256x128_64x4_2x1_v_bz_coopA_TNN', calls: 30, ms: 9, category: 'matmul' },
    { op: `void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<${'x'.repeat(120)}|>`, calls: 12, ms: 2.5, category: 'attention backward' }],
}
const ourOps = [{ op: 'matmulForward', calls: 49, ms: 5 }, { op: 'matmulBackward', calls: 49, ms: 10 },
  { op: 'attentionBackward', calls: 12, ms: 4 }, { op: 'zero', calls: 78, ms: 0.25 }]

test('the side-by-side table: categories summed per side, longer side first, totals and differences by hand', () => {
  assert.equal(compareTable(ourOps, torchProfile), [
    '| category | llm.ts ms/step | PyTorch ms/step | llm.ts − PyTorch |',
    '|---|---:|---:|---:|',
    '| matmul | 15.00 | 14.00 | +1.00 |',
    '| attention backward | 4.00 | 3.00 | +1.00 |',
    '| other | – | 0.50 | -0.50 |',
    '| memory (zero, copy) | 0.25 | – | +0.25 |',
    '| total | 19.25 | 17.50 | +1.75 |'].join('\n'))
  const k = kernelTable(torchProfile).split('\n')
  assert.equal(k[2], '| nvjet_tst_256x128_64x4_2x1_v_bz_coopA_TNN | matmul | 30 | 9.00 |')
  assert.match(k[3]!, /^\| void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<x+… \| attention backward \| 12 \| 2\.50 \|$/)
  assert.equal(k[3]!.split(' | ')[0]!.length, 2 + 100)   // '| ' and the name cut to 100 characters
})

test('the report: with a PyTorch profile, each entry of its model:B gets the table, the kernels once', () => {
  const result = (impl: Result['impl'], extra: Partial<Result>): Result => ({ impl, model: 'variant-124m', B: 16, T: 1024,
    params: 1, ms_per_step: 35, tokens_per_s: 468_000, peak_bytes: 2 ** 33, loss_first: 11, loss_last: 10.9, ...extra })
  const [first, second] = parseRuns('test', 'variant-124m:16,variant-124m:16:wgmma')
  const torch = [result('pytorch', { kernel_profile: torchProfile })]
  const entries: EntryRuns[] = [{ entry: first!, ours: [result('llm.ts', { profile: ourOps })], torch, torchFirst: true },
    { entry: second!, ours: [result('llm.ts', { profile: ourOps })], torch, torchFirst: false }]
  const out = formatTable(entries, { T: 1024, peakTflops: 900, repeat: 1 })
  const count = (re: RegExp): number => out.match(re)?.length ?? 0
  assert.equal(count(/^GPU time per training step by op, /gm), 2)
  assert.equal(count(/^GPU time per training step by category, variant-124m B=16: llm\.ts \(CUDA events per op\) and PyTorch \(torch\.profiler, 5 steps/gm), 1)
  assert.equal(count(/^GPU time per training step by category, variant-124m \(wgmma\) B=16: /gm), 1)
  assert.equal(count(/^\| matmul \| 15\.00 \| 14\.00 \| \+1\.00 \|$/gm), 2)
  assert.equal(count(/^PyTorch's longest kernels, variant-124m B=16:$/gm), 1)
  // without a PyTorch profile: llm.ts's ops only, as before
  const plain = formatTable([{ ...entries[0]!, torch: [result('pytorch', {})] }], { T: 1024, peakTflops: 900, repeat: 1 })
  assert.doesNotMatch(plain, /by category|longest kernels/)
  assert.match(plain, /^\| attentionBackward \| 12 \| 4\.00 \|$/m)
})
