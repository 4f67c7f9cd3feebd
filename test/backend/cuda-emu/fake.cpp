// Test tooling, not shipped: a CPU stand-in for libcuda.so.1, libnvrtc and libcublasLt (one library, three names),
// so the CUDA backend's host code runs end to end without a GPU. Device memory is host memory ending at a guard page
// (writes into the rounding before it are found after each kernel), copies are range-checked, "NVRTC" builds a
// kernel file with g++ against emu.hpp (through gen.mjs), and "cuBLASLt" (fake-lt.cpp) is a float64 reference GEMM
// that checks what the real one would refuse.

#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>
#include "schedule.hpp"

unsigned char emu_garbage();

namespace {

struct Region { uint64_t start; size_t mapped; size_t size; };
std::map<uint64_t, Region> allocs;   // user base -> region
size_t allocated = 0;                // sum of the requested sizes in allocs and of those being mapped
std::mutex allocMutex;
const char* currentKernel = nullptr;
struct sigaction previousSegv;

int fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "emu: %s: %s\n", what, detail.c_str());
  return 1;   // CUDA_ERROR_INVALID_VALUE
}

/** The allocation holding [p, p+n), or nullptr. */
const Region* owner(uint64_t p, size_t n) {
  std::lock_guard<std::mutex> lk(allocMutex);
  auto it = allocs.upper_bound(p);
  if (it == allocs.begin()) return nullptr;
  --it;
  if (p < it->first || p + n > it->first + it->second.size) return nullptr;
  return &it->second;
}

void onSegv(int sig, siginfo_t* info, void* ctx) {
  if (currentKernel != nullptr) {
    std::fprintf(stderr, "emu: kernel %s touched %p outside device memory and its dynamic shared memory (out-of-bounds access)\n",
                 currentKernel, info->si_addr);
    std::abort();
  }
  if (previousSegv.sa_flags & SA_SIGINFO) previousSegv.sa_sigaction(sig, info, ctx);
  else if (previousSegv.sa_handler != SIG_DFL && previousSegv.sa_handler != SIG_IGN) previousSegv.sa_handler(sig);
  else { signal(sig, SIG_DFL); raise(sig); }
}

__attribute__((constructor)) void installHandler() {
  struct sigaction sa {};
  sa.sa_sigaction = onSegv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &previousSegv);
}

/** Aborts, naming the kernel, when it wrote past the end of an allocation into the rounding to 256 bytes before the
 *  guard page (cuMemAlloc fills those bytes with garbage; only a kernel can reach them, copies are range-checked). */
void checkSlack(const std::string& kernel) {
  const unsigned char garbage = emu_garbage();
  std::lock_guard<std::mutex> lk(allocMutex);
  for (auto& [base, r] : allocs) {
    for (size_t i = r.size; i < (r.size + 255) / 256 * 256; i++) {
      if (((const unsigned char*)base)[i] == garbage) continue;
      std::fprintf(stderr, "emu: kernel %s wrote byte %zu of the %zu-byte allocation at 0x%llx, past its end\n", kernel.c_str(), i,
                   r.size, (unsigned long long)base);
      std::abort();
    }
  }
}

struct Func {
  void (*tramp)(const void*, size_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned);
  std::string name;
  unsigned maxDynamicShared = 48 * 1024;   // raised by cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES), as on a GPU
};

}  // namespace

/** For fake-lt.cpp: does [p, p+n) lie inside one allocation? */
bool emu_in_device_memory(uint64_t p, size_t n) { return owner(p, n) != nullptr; }

// LLMTS_EMU_PLAN=1: the memory plan only. Allocations are mapped without reserving host memory and only the
// host's own copies touch them (no garbage fill, memsets do nothing), launches are checked against the GPU's
// limits and skipped, matmuls are checked and skipped, and the device looks like an H100 (132 SMs, 80 GiB, more
// is out of memory), so the host code allocates exactly what it would there: its peak is the GPU's.
bool emu_plan_only() {
  static const bool plan = [] { const char* v = std::getenv("LLMTS_EMU_PLAN"); return v != nullptr && std::string(v) == "1"; }();
  return plan;
}

/** The byte fresh device memory holds: each LLMTS_EMU_SCHEDULE has its own (schedule.hpp), so that a
 *  read of memory nothing wrote differs between the schedules' results. */
unsigned char emu_garbage() { return emu_schedule().garbage; }

extern "C" {

// ---- driver ------------------------------------------------------------------------------------------------

int cuInit(unsigned) { return 0; }
int cuDriverGetVersion(int* v) { *v = 13000; return 0; }
// LLMTS_EMU_DEVICES=N shows N devices (data-parallel ranks each take one); every one is this process's emulator
static int emu_device_count() { const char* n = std::getenv("LLMTS_EMU_DEVICES"); return n != nullptr && std::atoi(n) > 0 ? std::atoi(n) : 1; }
int cuDeviceGetCount(int* c) { *c = emu_device_count(); return 0; }
int cuDeviceGet(int* d, int ordinal) { if (ordinal < 0 || ordinal >= emu_device_count()) return 101; *d = ordinal; return 0; }
// LLMTS_EMU_DEVICE_NAME=NAME answers a GPU's name (a test of what the backend derives from it, e.g. its peak)
int cuDeviceGetName(char* name, int len, int) {
  const char* as = std::getenv("LLMTS_EMU_DEVICE_NAME");
  std::snprintf(name, len, "%s", as != nullptr && *as != 0 ? as : "llm.ts CPU emulator");
  return 0;
}
// LLMTS_EMU_SMS=N shows N multiprocessors (default 4, an H100's 132 in plan mode): kernels sized by the SM count
// then launch as many blocks as on a GPU that large
static int emu_sms() { const char* n = std::getenv("LLMTS_EMU_SMS"); return n != nullptr && std::atoi(n) > 0 ? std::atoi(n) : 4; }
int cuDeviceGetAttribute(int* v, int attr, int) {
  *v = attr == 75 ? 9 : attr == 76 ? 0 : attr == 16 ? (emu_plan_only() ? 132 : emu_sms()) : attr == 97 ? 232448 : 0;
  return 0;
}
int cuDeviceTotalMem_v2(size_t* b, int) { *b = size_t(emu_plan_only() ? 80 : 8) << 30; return 0; }
int cuDevicePrimaryCtxRetain(void** ctx, int) { *ctx = (void*)0x1000; return 0; }
int cuCtxSetCurrent(void*) { return 0; }
int cuCtxSynchronize() { return 0; }
int cuMemGetInfo_v2(size_t* f, size_t* t) { cuDeviceTotalMem_v2(t, 0); *f = *t / 4 * 3; return 0; }

int cuMemAlloc_v2(uint64_t* out, size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (bytes + 255) / 256 * 256, body = (size + page - 1) / page * page;
  size_t total;
  cuDeviceTotalMem_v2(&total, 0);
  {   // the bytes are counted before the mapping, so two threads cannot both pass the check
    std::lock_guard<std::mutex> lk(allocMutex);
    if (allocated + bytes > total) return 2;   // CUDA_ERROR_OUT_OF_MEMORY, as the GPU would answer
    allocated += bytes;
  }
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (emu_plan_only() ? MAP_NORESERVE : 0);
  void* m = mmap(nullptr, body + page, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (m == MAP_FAILED) {
    std::lock_guard<std::mutex> lk(allocMutex);
    allocated -= bytes;
    return 2;
  }
  mprotect((char*)m + body, page, PROT_NONE);
  uint64_t base = (uint64_t)m + (body - size);
  if (!emu_plan_only()) std::memset((void*)base, emu_garbage(), size);   // device memory starts as garbage
  std::lock_guard<std::mutex> lk(allocMutex);
  allocs[base] = Region{(uint64_t)m, body + page, bytes};
  *out = base;
  return 0;
}

int cuMemFree_v2(uint64_t p) {
  std::lock_guard<std::mutex> lk(allocMutex);
  auto it = allocs.find(p);
  if (it == allocs.end()) return fail("cuMemFree", "not the start of an allocation");
  munmap((void*)it->second.start, it->second.mapped);
  allocated -= it->second.size;
  allocs.erase(it);
  return 0;
}

int cuMemcpyHtoD_v2(uint64_t dst, const void* src, size_t n) {
  if (!owner(dst, n)) return fail("cuMemcpyHtoD", "destination range outside any allocation");
  std::memcpy((void*)dst, src, n);
  return 0;
}
int cuMemcpyDtoH_v2(void* dst, uint64_t src, size_t n) {
  if (!owner(src, n)) return fail("cuMemcpyDtoH", "source range outside any allocation");
  std::memcpy(dst, (void*)src, n);
  return 0;
}
int cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t n) {
  if (!owner(dst, n) || !owner(src, n)) return fail("cuMemcpyDtoD", "range outside any allocation");
  std::memmove((void*)dst, (void*)src, n);
  return 0;
}
int cuMemsetD8_v2(uint64_t dst, unsigned char v, size_t n) {
  if (!owner(dst, n)) return fail("cuMemsetD8", "range outside any allocation");
  if (emu_plan_only()) return 0;
  std::memset((void*)dst, v, n);
  return 0;
}

int cuModuleLoadData(void** mod, const void* image) {
  void* h = dlopen((const char*)image, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return fail("cuModuleLoadData", dlerror());
  *mod = h;
  return 0;
}
int cuModuleGetFunction(void** fn, void* mod, const char* name) {
  void* t = dlsym(mod, (std::string("llmemu_") + name).c_str());
  if (t == nullptr) { fail("cuModuleGetFunction", name); return 500; }   // CUDA_ERROR_NOT_FOUND
  *fn = new Func{(decltype(Func::tramp))t, name};
  return 0;
}
int cuFuncSetAttribute(void* f, int attr, int value) {
  if (attr != 8) return 0;
  if (value < 0 || value > 232448) return 1;
  ((Func*)f)->maxDynamicShared = (unsigned)value;
  return 0;
}

// static shared memory is not modelled (the emulator's __shared__ arrays are per file, not per kernel): 0 bytes
int cuFuncGetAttribute(int* value, int, void*) {
  *value = 0;
  return 0;
}

int cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void*, void** params, void** extra) {
  Func* fn = (Func*)f;
  if (params != nullptr || extra == nullptr || extra[0] != (void*)1 || extra[2] != (void*)2 || extra[4] != nullptr) {
    return fail("cuLaunchKernel", fn->name + ": expected extra = {BUFFER_POINTER, buf, BUFFER_SIZE, &size, END}");
  }
  // the launch limits of an sm_90 GPU (CUDA_ERROR_INVALID_VALUE there), checked in plan mode too: a real-size
  // plan is where a grid outgrows 65535 rows or a block its shared memory
  if (gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u || gy > 65535 || gz > 65535) {
    return fail("cuLaunchKernel", fn->name + ": grid " + std::to_string(gx) + "x" + std::to_string(gy) + "x" + std::to_string(gz) +
                " outside 1..2^31-1 x 1..65535 x 1..65535");
  }
  if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > 1024) {
    return fail("cuLaunchKernel", fn->name + ": block " + std::to_string(bx) + "x" + std::to_string(by) + "x" + std::to_string(bz) +
                " over 1024 threads or its per-dimension limits");
  }
  if (shared > fn->maxDynamicShared) {
    return fail("cuLaunchKernel", fn->name + ": " + std::to_string(shared) + " bytes of dynamic shared memory, the function allows " +
                std::to_string(fn->maxDynamicShared) + " (cuFuncSetAttribute first)");
  }
  if (emu_plan_only()) return 0;
  currentKernel = fn->name.c_str();
  static const bool trace = std::getenv("LLMTS_EMU_TRACE") != nullptr;
  auto t0 = std::chrono::steady_clock::now();
  fn->tramp(extra[1], *(size_t*)extra[3], gx, gy, gz, bx, by, bz, shared);
  checkSlack(fn->name);
  if (trace) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "emu: %s grid %ux%ux%u block %ux%ux%u shared %u: %.1f ms\n", currentKernel, gx, gy, gz, bx, by, bz, shared, ms);
  }
  currentKernel = nullptr;
  return 0;
}

// kernels run synchronously, so every stream (NCCL's, fake-nccl.cpp) is already ordered with the default one
int cuStreamCreate(void** s, unsigned) { *s = new char(0); return 0; }
int cuStreamSynchronize(void*) { return 0; }
int cuStreamDestroy_v2(void* s) { delete (char*)s; return 0; }
int cuEventCreate(void** e, unsigned) { *e = new double(0); return 0; }
int cuEventRecord(void* e, void*) {
  *(double*)e = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return 0;
}
int cuEventSynchronize(void*) { return 0; }
int cuEventElapsedTime(float* ms, void* a, void* b) { *ms = (float)(*(double*)b - *(double*)a); return 0; }
int cuEventDestroy_v2(void* e) { delete (double*)e; return 0; }
int cuGetErrorName(int code, const char** s) {
  *s = code == 0 ? "CUDA_SUCCESS" : code == 1 ? "CUDA_ERROR_INVALID_VALUE" : code == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA_ERROR_EMULATED";
  return 0;
}
int cuGetErrorString(int code, const char** s) {
  *s = code == 0 ? "no error" : code == 2 ? "out of memory" : "see the emulator's message on stderr";
  return 0;
}

// ---- "NVRTC": g++ against emu.hpp --------------------------------------------------------------------------

struct Prog { std::string src, name, log, image; std::vector<std::pair<std::string, std::string>> headers; };

int nvrtcVersion(int* major, int* minor) { *major = 13; *minor = 0; return 0; }
const char* nvrtcGetErrorString(int r) { return r == 0 ? "NVRTC_SUCCESS" : "NVRTC_ERROR_COMPILATION (emulated)"; }
int nvrtcGetNumSupportedArchs(int* n) { *n = 1; return 0; }
int nvrtcGetSupportedArchs(int* a) { a[0] = 90; return 0; }

int nvrtcCreateProgram(Prog** p, const char* src, const char* name, int n, const char** headers, const char** names) {
  *p = new Prog{src, name, "", "", {}};
  for (int i = 0; i < n; i++) (*p)->headers.emplace_back(names[i], headers[i]);
  return 0;
}

int nvrtcCompileProgram(Prog* p, int, const char**) {
  const char* dir = std::getenv("LLMTS_EMU_DIR");
  if (dir == nullptr) { p->log = "LLMTS_EMU_DIR is not set"; return 6; }
  std::string all = p->src;
  for (auto& h : p->headers) all += h.first + h.second;
  std::string stem = p->name.substr(0, p->name.find('.'));
  std::string build = std::string(dir) + "/build/" + stem + "-" + std::to_string(std::hash<std::string>{}(all));
  std::string so = build + "/" + stem + ".so";
  if (access(so.c_str(), R_OK) != 0) {
    // built in a folder of this process's own, then renamed into place: concurrent processes never share a file
    std::string work = build + "/work-" + std::to_string(getpid());
    std::system(("mkdir -p '" + work + "'").c_str());
    std::ofstream(work + "/" + p->name) << p->src;
    for (auto& h : p->headers) std::ofstream(work + "/" + h.first) << h.second;
    std::string cmd = "node '" + std::string(dir) + "/gen.mjs' '" + work + "/" + p->name + "' '" + work + "/" + stem + ".emu.cpp' && " +
      "g++ -std=c++20 -O2 -g -fPIC -shared -fno-strict-aliasing -Wall -Wno-unused-function -DLLMTS_EMU -include '" + dir + "/emu.hpp' " +
      "-I '" + work + "' '" + work + "/" + stem + ".emu.cpp' -o '" + work + "/" + stem + ".so' -L '" + dir + "' -lllmtsemu-rt -Wl,-rpath,'" +
      dir + "' -pthread > '" + work + "/log' 2>&1 && mv '" + work + "/" + stem + ".so' '" + so + "'";
    int status = std::system(cmd.c_str());
    std::ifstream in(work + "/log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::system(("rm -rf '" + work + "'").c_str());
    if (status != 0) { p->log = ss.str(); return 6; }
  }
  p->image = so;
  return 0;
}

int nvrtcGetProgramLogSize(Prog* p, size_t* n) { *n = p->log.size() + 1; return 0; }
int nvrtcGetProgramLog(Prog* p, char* out) { std::memcpy(out, p->log.c_str(), p->log.size() + 1); return 0; }
int nvrtcGetCUBINSize(Prog* p, size_t* n) { *n = p->image.size() + 1; return 0; }
int nvrtcGetCUBIN(Prog* p, char* out) { std::memcpy(out, p->image.c_str(), p->image.size() + 1); return 0; }
int nvrtcGetPTXSize(Prog* p, size_t* n) { return nvrtcGetCUBINSize(p, n); }
int nvrtcGetPTX(Prog* p, char* out) { return nvrtcGetCUBIN(p, out); }
int nvrtcDestroyProgram(Prog** p) { delete *p; *p = nullptr; return 0; }

}  // extern "C"
