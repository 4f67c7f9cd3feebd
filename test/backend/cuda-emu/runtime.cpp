// Test tooling: the thread machinery behind emu.hpp (libllmtsemu-rt.so, linked by every emulated kernel file). Each
// CUDA thread of a block is a fiber on ONE OS thread (x86-64 stack switching in a few instructions; ucontext's
// signal-mask syscall per switch made shuffle-heavy kernels crawl), so runs are deterministic, and the order that
// LLMTS_EMU_SCHEDULE picks (blocks, warps, threads, when cp.async copies land) is the only thing that varies: a
// race-free kernel gives bit-identical results under every schedule.

#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <cstdarg>
#include <string>
#include <unordered_map>
#include "emu.hpp"
#include "schedule.hpp"

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// emu_switch(from, to): saves the callee-saved registers on the current stack, stores its pointer in *from,
// loads `to` and restores what was saved there. A fresh fiber's stack holds six zeros and its entry address.
asm(R"(
  .text
  .globl emu_switch
  .type emu_switch, @function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch, .-emu_switch
)");
extern "C" void emu_switch(void** from, void* to);

namespace {

// Barriers: __syncthreads parks a fiber until every live thread of the block is parked there (a thread that returned
// drops out, as exited GPU threads do), and a warp-collective op (shuffle, ldmatrix, mma) until its warp has arrived
// there (checkMeeting: a lane its mask names must not have exited); live threads waiting on different barriers are a
// deadlock and abort with the kernel's name. Warps run one at a time: the chosen warp's ready threads each run up to
// their next barrier or warp op, again and again; in the forward and reverse schedules the same warp goes on until it
// waits at __syncthreads (or is done), then the next; shuffle draws the warp again at every step. Each schedule has
// its garbage byte for shared memory at the start of every block (and fresh device memory, fake.cpp). A missing
// __syncthreads or cp.async wait, a read of memory before anything wrote it, or a block depending on another's
// results shows up as a difference between schedules. Float atomicAdd is made order-independent for that
// (emu_atomic_add); the compare-and-swap loop of a bf16 atomic add is not, so adding into one bf16 element from
// several threads would show up as a difference too.
enum class State { Ready, AtSync, AtWarp, AtGroup, Done };

struct Copy { void* dst; unsigned char bytes[16]; unsigned size; unsigned group; };
struct Product { float* d; float values[128]; int n; unsigned group; };   // a wgmma's results, not yet in d

struct Fiber {
  void* sp = nullptr;
  std::vector<char> stack;
  State state = State::Ready;
  dim3 idx;
  std::vector<Copy> copies;   // cp.async copies not landed yet (deferring schedules only)
  unsigned committed = 0;     // cp.async groups committed so far
  std::vector<Product> products;   // wgmma results not written yet (deferring schedules only)
  unsigned wgCommitted = 0;        // wgmma groups committed so far
};

constexpr size_t kStack = 256 * 1024;
void* scheduler = nullptr;
std::vector<Fiber>& fibers = *new std::vector<Fiber>();
std::vector<double>& slots = *new std::vector<double>();
struct Lane { const void* p; unsigned a[4], b[2]; const char* op; int arg; unsigned mask; unsigned long long desc; };
std::vector<Lane>& lanes = *new std::vector<Lane>();   // per thread: what a warp-collective op contributed
// the launch's dynamic shared memory: `requested` bytes rounded up to 16 (the start stays 16-byte aligned) right before
// an inaccessible page, so a kernel that reaches past it faults (fake.cpp names the kernel), as it would on a GPU; a
// write into the rounding slack is caught after the block (checkSlack), a read of it reads garbage
struct SharedMemory { void* map = nullptr; size_t mapped = 0; unsigned char* data = nullptr; size_t size = 0, requested = 0; };
SharedMemory shared;

void mapShared(size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (bytes + 15) / 16 * 16, body = (size + page - 1) / page * page;
  shared.requested = bytes;
  if (shared.map != nullptr && shared.size == size) return;
  if (shared.map != nullptr) munmap(shared.map, shared.mapped);
  shared.mapped = body + page;
  shared.map = mmap(nullptr, shared.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (shared.map == MAP_FAILED) { std::perror("emu: mmap of shared memory"); std::abort(); }
  mprotect((char*)shared.map + body, page, PROT_NONE);
  shared.data = (unsigned char*)shared.map + (body - size);
  shared.size = size;
}
const std::function<void()>* body = nullptr;
const char* kernelName = "";
unsigned current = 0;

const EmuSchedule& schedule() { return emu_schedule(); }
using Order = EmuOrder;

uint64_t rngState = 0;
uint64_t nextRandom() {   // xorshift64*
  rngState ^= rngState >> 12;
  rngState ^= rngState << 25;
  rngState ^= rngState >> 27;
  return rngState * 0x2545f4914f6cdd1dull;
}

/** 0..n-1 in the schedule's order (a fresh permutation on every call when shuffling; forward and reverse fill `out`
 *  only when n changes, since the scheduler asks at every step). */
void ordering(std::vector<unsigned>& out, unsigned n) {
  if (schedule().order != Order::Shuffle && out.size() == n) return;
  out.resize(n);
  for (unsigned i = 0; i < n; i++) out[i] = schedule().order == Order::Reverse ? n - 1 - i : i;
  if (schedule().order == Order::Shuffle) {
    for (unsigned i = n; i > 1; i--) std::swap(out[i - 1], out[nextRandom() % i]);
  }
}

// __shared__ arrays (gen.mjs registers each once, at its first use): refilled with garbage before every block, as
// a block on a GPU finds whatever the previous one left
std::vector<std::pair<void*, size_t>>& staticShared = *new std::vector<std::pair<void*, size_t>>();

// float atomicAdd targets: the value first found there and every addend, summed in one fixed order whatever order the
// threads came in; device memory's for the launch, shared memory's for the block (each block's are its own)
struct Accumulation { float last; float base; std::vector<unsigned> addends; };
using Accumulations = std::unordered_map<float*, Accumulation>;
Accumulations& deviceSums = *new Accumulations();
Accumulations& sharedSums = *new Accumulations();

void park(State s) {
  fibers[current].state = s;
  emu_switch(&fibers[current].sp, scheduler);
}

void entry() {
  (*body)();
  if (!fibers[current].products.empty()) {
    std::fprintf(stderr, "emu: kernel %s, block (%u,%u,%u), thread %u: ended with wgmma results not waited for (wgmma.wait_group)\n",
                 kernelName, blockIdx.x, blockIdx.y, blockIdx.z, current);
    std::abort();
  }
  for (const Copy& c : fibers[current].copies) std::memcpy(c.dst, c.bytes, c.size);   // cp.async copies still in flight
  fibers[current].copies.clear();
  park(State::Done);   // never resumed
}

/** What a GPU requires of a warp-collective op that warp w's live threads all wait at: every lane of the first one's
 *  mask takes part (none has exited), all of them at the same op (op and argument). */
void checkMeeting(unsigned w) {
  const Lane* first = nullptr;
  for (unsigned l = 0; l < 32 && first == nullptr; l++) if (fibers[w * 32 + l].state == State::AtWarp) first = &lanes[w * 32 + l];
  for (unsigned l = 0; l < 32; l++) {
    if ((first->mask >> l & 1u) == 0) continue;
    const Lane& x = lanes[w * 32 + l];
    const char* why = fibers[w * 32 + l].state == State::Done ? "had exited"
                    : x.op != first->op || x.arg != first->arg || x.mask != first->mask ? "is at another warp op" : nullptr;
    if (why == nullptr) continue;
    std::fprintf(stderr, "emu: kernel %s, block (%u,%u,%u), warp %u: lane %u %s when the warp met at %s(%d) with mask 0x%08x; every "
                 "lane of the mask must take part in the same op\n", kernelName, blockIdx.x, blockIdx.y, blockIdx.z, w, l, why,
                 first->op, first->arg, first->mask);
    std::abort();
  }
}

void checkSlack() {
  for (size_t i = shared.requested; i < shared.size; i++) {
    if (shared.data[i] == schedule().garbage) continue;
    std::fprintf(stderr, "emu: kernel %s, block (%u,%u,%u): wrote byte %zu of dynamic shared memory, past the %zu bytes the launch "
                 "asked for\n", kernelName, blockIdx.x, blockIdx.y, blockIdx.z, i, shared.requested);
    std::abort();
  }
}

/** The warp to run next: the first in the schedule's order with a ready thread, or whose live threads all wait on a
 *  warp-collective op (released here); else -1. One warp thus runs on up to its next __syncthreads before another
 *  starts, the most one warp can run ahead of another on a GPU, and the order says which goes first. */
int nextWarp(unsigned n) {
  static std::vector<unsigned> warps;
  ordering(warps, n / 32);
  for (unsigned w : warps) {
    bool ready = false, waiting = false, all = true;
    for (unsigned i = w * 32; i < w * 32 + 32; i++) {
      State s = fibers[i].state;
      ready = ready || s == State::Ready;
      waiting = waiting || s == State::AtWarp;
      all = all && (s == State::AtWarp || s == State::Done);
    }
    if (ready) return (int)w;
    if (waiting && all) {
      checkMeeting(w);
      for (unsigned i = w * 32; i < w * 32 + 32; i++) if (fibers[i].state == State::AtWarp) fibers[i].state = State::Ready;
      return (int)w;
    }
  }
  return -1;
}

/** Releases a warpgroup op (wgmma) that every thread of the block waits at: the emulator takes a block of one
 *  warpgroup only, all 128 threads live and at the same op, argument and descriptor (a GPU requires that); else false. */
bool groupMet(unsigned n) {
  for (unsigned i = 0; i < n; i++) if (fibers[i].state != State::AtGroup) return false;
  const Lane& first = lanes[0];
  for (unsigned i = 0; i < n; i++) {
    const Lane& x = lanes[i];
    if (n == 128 && x.op == first.op && x.arg == first.arg && x.desc == first.desc) continue;
    std::fprintf(stderr, "emu: kernel %s, block (%u,%u,%u): thread %u is at %s(%d, desc 0x%llx) when thread 0 is at %s(%d, desc "
                 "0x%llx) in a block of %u threads; a warpgroup op needs one warpgroup (128 threads) at the same op\n", kernelName,
                 blockIdx.x, blockIdx.y, blockIdx.z, i, x.op, x.arg, x.desc, first.op, first.arg, first.desc, n);
    std::abort();
  }
  for (unsigned i = 0; i < n; i++) fibers[i].state = State::Ready;
  return true;
}

void runBlock(unsigned n) {
  sharedSums.clear();
  std::memset(shared.data, schedule().garbage, shared.size);
  for (auto& [p, size] : staticShared) std::memset(p, schedule().garbage, size);
  for (unsigned i = 0; i < n; i++) {
    Fiber& f = fibers[i];
    if (f.stack.empty()) f.stack.resize(kStack);
    uintptr_t top = ((uintptr_t)f.stack.data() + f.stack.size()) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;              // entry's return address slot: rsp % 16 == 8 on entry, as after a call
    *--sp = (void*)&entry;        // where emu_switch's ret goes
    for (int r = 0; r < 6; r++) *--sp = nullptr;   // rbp rbx r12 r13 r14 r15
    f.sp = sp;
    f.state = State::Ready;
    f.idx = {i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)};
    f.copies.clear();
    f.committed = 0;
    f.products.clear();
    f.wgCommitted = 0;
  }
  static std::vector<unsigned> laneOrder;
  for (;;) {
    int w = nextWarp(n);
    if (w >= 0) {   // each ready thread of the warp, in the schedule's order, up to its next barrier or warp op
      ordering(laneOrder, 32);
      for (unsigned l : laneOrder) {
        unsigned i = (unsigned)w * 32 + l;
        if (fibers[i].state != State::Ready) continue;
        current = i;
        threadIdx = fibers[i].idx;
        emu_switch(&scheduler, fibers[i].sp);
      }
      continue;
    }
    bool live = false, allSync = true;
    for (unsigned i = 0; i < n; i++) {
      if (fibers[i].state == State::Done) continue;
      live = true;
      allSync = allSync && fibers[i].state == State::AtSync;
    }
    if (!live) { checkSlack(); return; }
    if (allSync) {
      for (unsigned i = 0; i < n; i++) if (fibers[i].state == State::AtSync) fibers[i].state = State::Ready;
      continue;
    }
    if (groupMet(n)) continue;
    std::string states;
    for (unsigned i = 0; i < n; i++) states += "RSWGD"[(int)fibers[i].state];
    std::fprintf(stderr, "emu: kernel %s deadlocks in block (%u,%u,%u): live threads wait on different barriers "
                 "(R ready, S __syncthreads, W warp op, G warpgroup op, D done): %s\n", kernelName, blockIdx.x, blockIdx.y,
                 blockIdx.z, states.c_str());
    std::abort();
  }
}

}  // namespace

void __syncthreads() { park(State::AtSync); }

/** Stops the run with "emu: kernel K, block (x,y,z), thread i: " and the printf-formatted message. */
[[noreturn]] __attribute__((format(printf, 1, 2))) static void threadFault(const char* format, ...) {
  std::fprintf(stderr, "emu: kernel %s, block (%u,%u,%u), thread %u: ", kernelName, blockIdx.x, blockIdx.y, blockIdx.z, current);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::abort();
}

void emu_misaligned(const char* type, const void* p, size_t alignment) {
  threadFault("%p cast to %s is not %zu-byte aligned (a GPU faults on the access)", p, type, alignment);
}

void* emu_dynamic_shared() { return shared.data; }

// cp.async: a copy may land any time from its issue to the wait_group that covers it. The forward schedule lands it
// at once (so a write into a buffer other threads still read shows); the others hold it back until that wait (so a
// read of the buffer before the wait shows). The source is read at issue.
void emu_cp_async(void* dst, const void* src, unsigned size) {
  if ((uintptr_t)dst % size != 0 || (uintptr_t)src % size != 0) {
    threadFault("cp.async of %u bytes from %p to %p, not both %u-byte aligned", size, src, dst, size);
  }
  if (schedule().order == Order::Forward) { std::memcpy(dst, src, size); return; }
  Copy c{dst, {}, size, fibers[current].committed};
  std::memcpy(c.bytes, src, size);
  fibers[current].copies.push_back(c);
}

void emu_cp_async_commit() { fibers[current].committed++; }

void emu_cp_async_wait(unsigned pending) {
  Fiber& f = fibers[current];
  std::vector<Copy> later;
  for (const Copy& c : f.copies) {
    if (c.group + pending < f.committed) std::memcpy(c.dst, c.bytes, c.size);   // in a group older than the newest `pending`
    else later.push_back(c);
  }
  f.copies.swap(later);
}

bool emu_register_shared(void* p, size_t size) {
  std::memset(p, schedule().garbage, size);   // the first thread to get here: no thread has written it yet
  staticShared.emplace_back(p, size);
  return true;
}

float emu_atomic_add(float* p, float v) {
  float old = *p;
  bool inShared = (unsigned char*)p >= shared.data && (unsigned char*)p < shared.data + shared.size;
  for (auto& [q, size] : staticShared) inShared = inShared || ((char*)p >= (char*)q && (char*)p < (char*)q + size);
  Accumulations& sums = inShared ? sharedSums : deviceSums;
  auto it = sums.find(p);
  if (it == sums.end() || __float_as_uint(it->second.last) != __float_as_uint(old)) {
    it = sums.insert_or_assign(p, Accumulation{old, old, {}}).first;   // a plain store came between: start over
  }
  Accumulation& a = it->second;
  unsigned bits = __float_as_uint(v);
  a.addends.insert(std::upper_bound(a.addends.begin(), a.addends.end(), bits), bits);
  long double sum = a.base;
  for (unsigned b : a.addends) sum += __uint_as_float(b);
  a.last = *p = (float)sum;
  return old;
}

#include "collective.inc"   // the warp and warpgroup ops

void emu_launch(const char* name, dim3 grid, dim3 shape, unsigned sharedBytes, const std::function<void()>& fn) {
  unsigned n = shape.x * shape.y * shape.z;
  if (n == 0 || n > 1024 || n % 32 != 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
      (uint64_t)grid.x * grid.y * grid.z > 0xffffffffull) {   // blocks past 2^32 - 1: far beyond any emulated test
    std::fprintf(stderr, "emu: kernel %s launched with grid %ux%ux%u, block %ux%ux%u: expected a block of 32-1024 threads "
                 "(a multiple of 32) and a grid of 1..2^32-1 blocks\n", name, grid.x, grid.y, grid.z, shape.x, shape.y, shape.z);
    std::abort();
  }
  kernelName = name;
  body = &fn;
  blockDim = shape;
  gridDim = grid;
  if (fibers.size() < n) fibers.resize(n);
  slots.assign(n, 0.0);
  lanes.assign(n, Lane{});
  mapShared(sharedBytes);   // filled with garbage before each block
  deviceSums.clear();
  if (rngState == 0) rngState = schedule().seed;
  uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
  std::vector<unsigned> order;
  if (schedule().order == Order::Shuffle) ordering(order, (unsigned)blocks);
  for (uint64_t b = 0; b < blocks; b++) {
    uint64_t k = schedule().order == Order::Forward ? b : schedule().order == Order::Reverse ? blocks - 1 - b : order[b];
    blockIdx = {(unsigned)(k % grid.x), (unsigned)(k / grid.x % grid.y), (unsigned)(k / ((uint64_t)grid.x * grid.y))};
    runBlock(n);
  }
}
