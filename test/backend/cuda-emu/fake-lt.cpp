// Test tooling, not shipped: the cuBLASLt part of the CPU stand-in (see fake.cpp). The heuristic refuses what real
// cuBLASLt would (mixed A/B types, f32 operands into a bf16 D, shapes that do not chain) and returns an algo holding
// the promised alignments and workspace, up to 3 of them (the candidates gemmTune times; they compute alike); the
// matmul checks those promises, the algo's integrity, and every extent against device memory, then computes in
// float64 (TF32-rounded inputs when asked), adds beta·C and the bias, and stores D as f32 or bf16 (round to nearest
// even). LLMTS_EMU_LT_DELAY_MS=a,b,c makes each call of candidate i sleep the i-th number of ms (timing tests), and
// LLMTS_EMU_LT_UNUSABLE=i returns candidate i with a failed state.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

bool emu_in_device_memory(uint64_t p, size_t n);
bool emu_plan_only();

namespace {

struct Desc { int compute, scale, transA = 0, transB = 0; unsigned epilogue = 1; uint64_t bias = 0; };
struct Layout { int type; uint64_t rows, cols; int64_t ld; };
struct Pref { uint64_t workspace = 0; unsigned align[4] = {256, 256, 256, 256}; };

int bad(const std::string& what) { std::fprintf(stderr, "emu cublasLt: %s\n", what.c_str()); return 7; }   // INVALID_VALUE

size_t elemBytes(int type) { return type == 14 ? 2 : 4; }

double load(const Layout* l, uint64_t base, uint64_t r, uint64_t c) {
  uint64_t i = c * (uint64_t)l->ld + r;
  if (l->type == 14) { uint32_t u = (uint32_t)((const uint16_t*)base)[i] << 16; float f; std::memcpy(&f, &u, 4); return f; }
  return ((const float*)base)[i];
}

void store(const Layout* l, uint64_t base, uint64_t r, uint64_t c, double v) {
  uint64_t i = c * (uint64_t)l->ld + r;
  float f = (float)v;
  if (l->type != 14) { ((float*)base)[i] = f; return; }
  uint32_t u;
  std::memcpy(&u, &f, 4);
  ((uint16_t*)base)[i] = (u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu) ? (uint16_t)((u >> 16) | 0x40)
                                                                               : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

double tf32(double x) {   // round to a 10-bit mantissa, nearest even
  float f = (float)x;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
  std::memcpy(&f, &u, 4);
  return f;
}

unsigned alignmentOf(uint64_t p) { unsigned a = 1; while (a < 256 && p % (a * 2) == 0) a *= 2; return a; }

/** Shapes of op(A) (m,k), op(B) (k,n), C = D (m,n). */
int check(const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dl, uint64_t& m, uint64_t& n, uint64_t& k) {
  if (a->type != b->type) return bad("A and B have different types");
  if (a->type != 0 && a->type != 14) return bad("A/B type is neither f32 nor bf16");
  if (a->type == 0 && dl->type == 14) return bad("f32 operands cannot produce a bf16 D");
  if (d->compute == 77 && a->type != 0) return bad("TF32 compute with non-f32 operands");
  if (d->compute != 68 && d->compute != 77) return bad("compute type " + std::to_string(d->compute));
  if (c->type != dl->type || c->rows != dl->rows || c->cols != dl->cols || c->ld != dl->ld) return bad("C and D layouts differ");
  m = d->transA ? a->cols : a->rows;
  k = d->transA ? a->rows : a->cols;
  uint64_t kb = d->transB ? b->cols : b->rows;
  n = d->transB ? b->rows : b->cols;
  if (kb != k || dl->rows != m || dl->cols != n) return bad("shapes do not chain: op(A) " + std::to_string(m) + "x" + std::to_string(k) +
    ", op(B) " + std::to_string(kb) + "x" + std::to_string(n) + ", D " + std::to_string(dl->rows) + "x" + std::to_string(dl->cols));
  for (const Layout* l : {a, b, dl}) if (l->ld < (int64_t)l->rows) return bad("ld below rows");
  if (d->epilogue != 1 && d->epilogue != 4) return bad("epilogue " + std::to_string(d->epilogue));
  if (d->epilogue == 4 && d->bias == 0) return bad("bias epilogue without a bias pointer");
  return 0;
}

/** What this cuBLASLt keeps in the 64-byte cublasLtMatmulAlgo_t: the promised alignments, the workspace the algorithm
 *  may use, whose descriptors it was chosen for, its index among the heuristic's candidates, and a checksum (an algo
 *  copied short or altered fails it). */
struct Algo {
  unsigned align[4];
  uint64_t workspace, operands, index, unused[2], check;
  uint64_t sum() const {
    uint64_t h = 0x9e3779b97f4a7c15ull, words[7];
    std::memcpy(words, this, sizeof words);
    for (uint64_t w : words) h = (h ^ w) * 0x100000001b3ull;
    return h;
  }
};
static_assert(sizeof(Algo) == 64);

uint64_t fingerprint(const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dl) {
  uint64_t h = 0;
  for (const void* p : {(const void*)d, (const void*)a, (const void*)b, (const void*)c, (const void*)dl}) {
    h = (h ^ (uint64_t)p) * 0x100000001b3ull;
  }
  return h;
}

constexpr int kCandidates = 3;

/** LLMTS_EMU_LT_DELAY_MS's entry for candidate `index` (read at each call: a test sets it around its own matmuls). */
void delay(uint64_t index) {
  const char* v = std::getenv("LLMTS_EMU_LT_DELAY_MS");
  for (uint64_t i = 0; v != nullptr; i++) {
    char* end;
    long ms = std::strtol(v, &end, 10);
    if (i == index) { if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms)); return; }
    v = *end == ',' ? end + 1 : nullptr;
  }
}

/** Whether LLMTS_EMU_LT_UNUSABLE names candidate `index`: the heuristic then returns it with a failed state (15,
 *  CUBLAS_STATUS_NOT_SUPPORTED), as real cuBLASLt may, and the matmul refuses it. */
bool unusable(uint64_t index) {
  const char* v = std::getenv("LLMTS_EMU_LT_UNUSABLE");
  return v != nullptr && *v != 0 && std::strtoull(v, nullptr, 10) == index;
}

bool inMemory(const Layout* l, uint64_t p) {
  return emu_in_device_memory(p, ((l->cols - 1) * (uint64_t)l->ld + l->rows) * elemBytes(l->type));
}

}  // namespace

extern "C" {

size_t cublasLtGetVersion() { return 130000; }
const char* cublasLtGetStatusName(int s) {
  return s == 0 ? "CUBLAS_STATUS_SUCCESS" : s == 7 ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_EMULATED";
}
int cublasLtCreate(void** h) { *h = (void*)0x2000; return 0; }

int cublasLtMatmulDescCreate(Desc** d, int compute, int scale) {
  if (scale != 0) return bad("scale type must be CUDA_R_32F");
  *d = new Desc{compute, scale};
  return 0;
}

int cublasLtMatmulDescSetAttribute(Desc* d, int attr, const void* buf, size_t size) {
  switch (attr) {
    case 3: if (size != 4) return bad("TRANSA size"); d->transA = *(const int*)buf; return 0;
    case 4: if (size != 4) return bad("TRANSB size"); d->transB = *(const int*)buf; return 0;
    case 7: if (size != 4) return bad("EPILOGUE size"); d->epilogue = *(const unsigned*)buf; return 0;
    case 8: if (size != 8) return bad("BIAS_POINTER size"); d->bias = *(const uint64_t*)buf; return 0;
    default: return bad("unexpected matmul attribute " + std::to_string(attr));
  }
}

int cublasLtMatrixLayoutCreate(Layout** l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return bad("empty matrix");
  *l = new Layout{type, rows, cols, ld};
  return 0;
}

int cublasLtMatmulPreferenceCreate(Pref** p) { *p = new Pref(); return 0; }
int cublasLtMatmulPreferenceDestroy(Pref* p) { delete p; return 0; }
int cublasLtMatmulPreferenceSetAttribute(Pref* p, int attr, const void* buf, size_t size) {
  if (attr == 1) { if (size != 8) return bad("MAX_WORKSPACE_BYTES size"); p->workspace = *(const uint64_t*)buf; return 0; }
  if (attr >= 5 && attr <= 8) { if (size != 4) return bad("MIN_ALIGNMENT size"); p->align[attr - 5] = *(const unsigned*)buf; return 0; }
  return bad("unexpected preference attribute " + std::to_string(attr));
}

int cublasLtMatmulAlgoGetHeuristic(void*, Desc* d, Layout* a, Layout* b, Layout* c, Layout* dl, Pref* p, int requested,
                                   unsigned char* results, int* returned) {
  uint64_t m, n, k;
  if (int s = check(d, a, b, c, dl, m, n, k)) return s;
  if (requested < 1) return bad("no algorithm requested");
  int count = requested < kCandidates ? requested : kCandidates;
  for (int i = 0; i < count; i++) {
    unsigned char* r = results + 96 * i;
    std::memset(r, 0, 96);
    Algo algo{};
    std::memcpy(algo.align, p->align, sizeof p->align);
    algo.workspace = p->workspace;   // the worst case: an algorithm may use all the workspace it was allowed
    algo.operands = fingerprint(d, a, b, c, dl);
    algo.index = i;
    algo.check = algo.sum();
    std::memcpy(r, &algo, sizeof algo);
    std::memcpy(r + 64, &algo.workspace, 8);   // the result's workspaceSize
    int32_t state = unusable(i) ? 15 : 0;
    std::memcpy(r + 72, &state, 4);            // the result's state
  }
  *returned = count;
  return 0;
}

int cublasLtMatmul(void*, Desc* d, const float* alpha, uint64_t A, Layout* a, uint64_t B, Layout* b, const float* beta,
                   uint64_t C, Layout* c, uint64_t D, Layout* dl, const unsigned char* algoBytes, uint64_t workspace,
                   size_t workspaceBytes, void*) {
  uint64_t m, n, k;
  if (int s = check(d, a, b, c, dl, m, n, k)) return s;
  Algo algo;
  std::memcpy(&algo, algoBytes, sizeof algo);
  if (algo.check != algo.sum()) return bad("the algo is not the 64 bytes a heuristic returned");
  if (algo.operands != fingerprint(d, a, b, c, dl)) return bad("the algo was returned for other descriptors or layouts");
  if (workspaceBytes < algo.workspace) {
    return bad("workspace of " + std::to_string(workspaceBytes) + " bytes, the algorithm may use " + std::to_string(algo.workspace));
  }
  if (workspaceBytes > 0 && !emu_in_device_memory(workspace, workspaceBytes)) return bad("the workspace extends outside device memory");
  const uint64_t ptrs[4] = {A, B, C, D};
  for (int i = 0; i < 4; i++) if (alignmentOf(ptrs[i]) < algo.align[i]) return bad("pointer less aligned than the preference promised");
  if (!inMemory(a, A) || !inMemory(b, B) || !inMemory(c, C) || !inMemory(dl, D)) return bad("a matrix extends outside device memory");
  if (d->epilogue == 4 && !emu_in_device_memory(d->bias, m * elemBytes(dl->type))) return bad("bias outside device memory");
  // a real GPU faults on a bias epilogue with a bias less than 16-byte aligned (seen on A100 by other projects)
  if (d->epilogue == 4 && alignmentOf(d->bias) < 16) return bad("bias pointer less than 16-byte aligned");
  if (unusable(algo.index)) return bad("an algorithm the heuristic returned with a failed state");
  if (emu_plan_only()) return 0;
  delay(algo.index);
  bool round = d->compute == 77;
  // op(A) as (m, k) and op(B)ᵀ as (n, k), both row-major float64 (TF32-rounded when asked): dot products of rows
  std::vector<double> opA(m * k), opBt(n * k);
  for (uint64_t i = 0; i < m; i++) {
    for (uint64_t q = 0; q < k; q++) {
      double x = d->transA ? load(a, A, q, i) : load(a, A, i, q);
      opA[i * k + q] = round ? tf32(x) : x;
    }
  }
  for (uint64_t j = 0; j < n; j++) {
    for (uint64_t q = 0; q < k; q++) {
      double y = d->transB ? load(b, B, j, q) : load(b, B, q, j);
      opBt[j * k + q] = round ? tf32(y) : y;
    }
  }
  for (uint64_t j = 0; j < n; j++) {
    const double* y = &opBt[j * k];
    for (uint64_t i = 0; i < m; i++) {
      const double* x = &opA[i * k];
      double s = 0;
      for (uint64_t q = 0; q < k; q++) s += x[q] * y[q];
      double v = (double)*alpha * s + (*beta != 0.f ? (double)*beta * load(c, C, i, j) : 0.0);
      if (d->epilogue == 4) { Layout bl{dl->type, m, 1, (int64_t)m}; v += load(&bl, d->bias, i, 0); }
      store(dl, D, i, j, v);
    }
  }
  return 0;
}

}  // extern "C"
