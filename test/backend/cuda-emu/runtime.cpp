// Test tooling: the thread machinery behind emu.hpp (libllmtsemu-rt.so, linked by every emulated kernel file).
// Each CUDA thread of a block is a fiber on ONE OS thread (x86-64 stack switching in a few instructions, not
// ucontext, whose signal-mask syscall per switch made shuffle-heavy kernels crawl), so runs are deterministic:
// __syncthreads parks a fiber until every live thread of the block is parked there, a warp shuffle parks it
// until its warp has written its slots. A thread that returns drops out of both (as exited GPU threads do);
// a block whose live threads wait on different barriers is a deadlock and aborts with the kernel's name.

#include <string>
#include "emu.hpp"

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

enum class State { Ready, AtSync, AtWarp, Done };

struct Fiber {
  void* sp = nullptr;
  std::vector<char> stack;
  State state = State::Ready;
  dim3 idx;
};

constexpr size_t kStack = 256 * 1024;
void* scheduler = nullptr;
std::vector<Fiber>& fibers = *new std::vector<Fiber>();
std::vector<double>& slots = *new std::vector<double>();
struct Lane { const void* p; unsigned a[4], b[2]; };
std::vector<Lane>& lanes = *new std::vector<Lane>();   // per thread: what a warp-collective op contributed
std::vector<unsigned char>& shared = *new std::vector<unsigned char>();
const std::function<void()>* body = nullptr;
const char* kernelName = "";
unsigned current = 0;

void park(State s) {
  fibers[current].state = s;
  emu_switch(&fibers[current].sp, scheduler);
}

void entry() {
  (*body)();
  park(State::Done);   // never resumed
}

/** Releases barriers whose participants have all arrived; false when nothing can move (deadlock). */
bool release(unsigned n) {
  bool moved = false, anySync = false, allSync = true;
  for (unsigned i = 0; i < n; i++) {
    if (fibers[i].state == State::Done) continue;
    if (fibers[i].state == State::AtSync) anySync = true; else allSync = false;
  }
  if (anySync && allSync) {
    for (unsigned i = 0; i < n; i++) if (fibers[i].state == State::AtSync) fibers[i].state = State::Ready;
    return true;
  }
  for (unsigned w = 0; w < n / 32; w++) {
    bool any = false, all = true;
    for (unsigned i = w * 32; i < w * 32 + 32; i++) {
      if (fibers[i].state == State::Done) continue;
      if (fibers[i].state == State::AtWarp) any = true; else all = false;
    }
    if (any && all) {
      for (unsigned i = w * 32; i < w * 32 + 32; i++) if (fibers[i].state == State::AtWarp) fibers[i].state = State::Ready;
      moved = true;
    }
  }
  return moved;
}

void runBlock(unsigned n) {
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
  }
  for (;;) {
    for (unsigned i = 0; i < n; i++) {
      if (fibers[i].state != State::Ready) continue;
      current = i;
      threadIdx = fibers[i].idx;
      emu_switch(&scheduler, fibers[i].sp);
    }
    bool live = false, ready = false;
    for (unsigned i = 0; i < n; i++) {
      live = live || fibers[i].state != State::Done;
      ready = ready || fibers[i].state == State::Ready;
    }
    if (!live) return;
    if (!ready && !release(n)) {
      std::string states;
      for (unsigned i = 0; i < n; i++) states += "RSWD"[(int)fibers[i].state];
      std::fprintf(stderr, "emu: kernel %s deadlocks in block (%u,%u,%u): live threads wait on different barriers "
                   "(R ready, S __syncthreads, W warp shuffle, D done): %s\n", kernelName, blockIdx.x, blockIdx.y, blockIdx.z, states.c_str());
      std::abort();
    }
  }
}

}  // namespace

void __syncthreads() { park(State::AtSync); }

void* emu_dynamic_shared() { return shared.data(); }

double emu_shfl_xor(double v, int laneMask) {
  unsigned warp = current / 32, lane = current % 32;
  slots[current] = v;
  park(State::AtWarp);
  double r = slots[warp * 32 + (lane ^ (unsigned)laneMask)];
  park(State::AtWarp);
  return r;
}

static float bf(unsigned bits16) { return __uint_as_float((bits16 & 0xffffu) << 16); }

void emu_ldmatrix_x4(unsigned* r, const void* rowAddress, bool trans) {
  unsigned warp = current / 32, lane = current % 32;
  lanes[current].p = rowAddress;
  park(State::AtWarp);
  auto at = [&](unsigned m, unsigned row, unsigned col) -> unsigned {   // element (row, col) of matrix m
    return ((const uint16_t*)lanes[warp * 32 + m * 8 + row].p)[col];
  };
  for (unsigned m = 0; m < 4; m++) {
    unsigned lo, hi;
    if (!trans) { lo = at(m, lane / 4, 2 * (lane % 4)); hi = at(m, lane / 4, 2 * (lane % 4) + 1); }
    else { lo = at(m, 2 * (lane % 4), lane / 4); hi = at(m, 2 * (lane % 4) + 1, lane / 4); }
    r[m] = lo | (hi << 16);
  }
  park(State::AtWarp);
}

void emu_mma_bf16(float* d, const unsigned* a, const unsigned* b) {
  unsigned warp = current / 32, lane = current % 32;
  Lane& me = lanes[current];
  for (int i = 0; i < 4; i++) me.a[i] = a[i];
  for (int i = 0; i < 2; i++) me.b[i] = b[i];
  park(State::AtWarp);
  float A[16][16], B[16][8];
  for (unsigned l = 0; l < 32; l++) {
    const Lane& x = lanes[warp * 32 + l];
    unsigned g = l / 4, t = l % 4;
    for (unsigned h = 0; h < 2; h++) {
      A[g][2 * t + h] = bf(x.a[0] >> (16 * h));
      A[g + 8][2 * t + h] = bf(x.a[1] >> (16 * h));
      A[g][2 * t + 8 + h] = bf(x.a[2] >> (16 * h));
      A[g + 8][2 * t + 8 + h] = bf(x.a[3] >> (16 * h));
      B[2 * t + h][g] = bf(x.b[0] >> (16 * h));
      B[2 * t + 8 + h][g] = bf(x.b[1] >> (16 * h));
    }
  }
  unsigned g = lane / 4, t = lane % 4;
  for (unsigned k = 0; k < 16; k++) {
    d[0] += A[g][k] * B[k][2 * t];
    d[1] += A[g][k] * B[k][2 * t + 1];
    d[2] += A[g + 8][k] * B[k][2 * t];
    d[3] += A[g + 8][k] * B[k][2 * t + 1];
  }
  park(State::AtWarp);
}

void emu_launch(const char* name, dim3 grid, dim3 shape, unsigned sharedBytes, const std::function<void()>& fn) {
  unsigned n = shape.x * shape.y * shape.z;
  if (n == 0 || n > 1024 || n % 32 != 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
    std::fprintf(stderr, "emu: kernel %s launched with grid %ux%ux%u, block %ux%ux%u\n", name, grid.x, grid.y, grid.z, shape.x, shape.y, shape.z);
    std::abort();
  }
  kernelName = name;
  body = &fn;
  blockDim = shape;
  gridDim = grid;
  if (fibers.size() < n) fibers.resize(n);
  slots.assign(n, 0.0);
  lanes.assign(n, Lane{});
  shared.assign(sharedBytes + 16, 0xcd);   // garbage, as uninitialized shared memory is
  for (unsigned z = 0; z < grid.z; z++) {
    for (unsigned y = 0; y < grid.y; y++) {
      for (unsigned x = 0; x < grid.x; x++) {
        blockIdx = {x, y, z};
        runBlock(n);
      }
    }
  }
}
