// Spec dense peak TFLOP/s of NVIDIA data-center GPUs by device name, from NVIDIA's datasheets (half the "with
// sparsity" figures; SXM unless the name says PCIe or NVL): bf16 on the tensor cores with f32 accumulation, TF32 on
// the tensor cores, and plain fp32. `llmts train` reports MFU over these; a GPU not listed has none.

/** The precision a backend's matmuls run in. */
export type MatmulPrecision = 'bf16' | 'tf32' | 'fp32'

const table: [RegExp, Partial<Record<MatmulPrecision, number>>][] = [
  [/H100.*PCIe/i, { bf16: 756.5, tf32: 378, fp32: 51 }],
  [/H[12]00.*NVL/i, { bf16: 835.5, tf32: 417.5, fp32: 60 }],
  [/H100|H200|H800/i, { bf16: 989.5, tf32: 494.5, fp32: 67 }],   // GH200's GPU too
  [/A100|A800/i, { bf16: 312, tf32: 156, fp32: 19.5 }],
  [/L40S/i, { bf16: 362, tf32: 183, fp32: 91.6 }],
  [/B200/i, { bf16: 2250, tf32: 1100 }],
]

/** The spec dense peak TFLOP/s of the GPU called `device` at `precision`, or null where the table has none. */
export function specPeakTflops(device: string, precision: MatmulPrecision): number | null {
  return table.find(([re]) => re.test(device))?.[1][precision] ?? null
}
