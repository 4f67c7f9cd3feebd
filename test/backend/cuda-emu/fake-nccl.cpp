// Test tooling, not shipped: a CPU stand-in for libnccl.so.2 (see fake.cpp) for ranks on one machine, one process
// each. Each process's device memory is its own host memory, so ranks exchange data through files in the folder the
// unique id names: call number `seq` of a rank writes <seq>.<rank> (as .tmp, then renamed, so it appears whole), waits
// for every rank's file of that seq and sums them in rank order, so every rank computes the same bits. Joining the
// communicator is seq 0 (a barrier that also checks the ranks agree on the world size).

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

bool emu_in_device_memory(uint64_t p, size_t n);   // fake.cpp
bool emu_plan_only();

struct ncclUniqueId { char internal[128]; };

namespace {

enum Result { kSuccess = 0, kSystemError = 2, kInvalidArgument = 4 };
enum Type { kFloat32 = 7, kBfloat16 = 9 };
const char kMagic[16] = "llmts-emu-nccl1";   // then the folder's path, NUL-terminated

struct Comm { std::string dir; int world, rank; uint64_t seq = 0; };

/** What a rank's file of one seq starts with; every rank's must match (a mismatch is a caller's bug). */
struct Header { uint64_t count; int32_t type; int32_t world; };

int failed(int code, const std::string& what) {
  std::fprintf(stderr, "emu nccl: %s\n", what.c_str());
  return code;
}

std::string fileOf(const Comm& c, uint64_t seq, int rank) { return c.dir + "/" + std::to_string(seq) + "." + std::to_string(rank); }

/** Writes this rank's file of `seq`: the header, then `bytes` bytes of `data`. */
int publish(const Comm& c, uint64_t seq, const Header& h, const void* data, size_t bytes, const char* call) {
  std::string path = fileOf(c, seq, c.rank), tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr && std::fwrite(&h, sizeof h, 1, f) == 1 && (bytes == 0 || std::fwrite(data, bytes, 1, f) == 1);
  if (f != nullptr && std::fclose(f) != 0) ok = false;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return failed(kSystemError, std::string(call) + ": cannot write " + path + ": " + std::strerror(errno));
  }
  return kSuccess;
}

/** Waits until every rank's file of `seq` exists (LLMTS_EMU_NCCL_TIMEOUT_S, default 300 s). */
int awaitAll(const Comm& c, uint64_t seq, const char* call) {
  const char* t = std::getenv("LLMTS_EMU_NCCL_TIMEOUT_S");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(t != nullptr ? std::atoi(t) : 300);
  for (int r = 0; r < c.world; r++) {
    while (access(fileOf(c, seq, r).c_str(), F_OK) != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        return failed(kSystemError, std::string(call) + ": rank " + std::to_string(c.rank) + " timed out waiting for rank " +
                      std::to_string(r) + "'s call " + std::to_string(seq) + " in " + c.dir + " (did that rank exit or skip a call?)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  // everyone wrote `seq` after reading all of seq-1: this rank's file of seq-1 is no longer needed
  if (seq > 0) unlink(fileOf(c, seq - 1, c.rank).c_str());
  return kSuccess;
}

/** Reads rank r's data of `seq` into out (bytes long); its header must equal `want`. */
int readPeer(const Comm& c, uint64_t seq, int r, const Header& want, void* out, size_t bytes, const char* call) {
  std::string path = fileOf(c, seq, r);
  FILE* f = std::fopen(path.c_str(), "rb");
  Header h{};
  bool ok = f != nullptr && std::fread(&h, sizeof h, 1, f) == 1;
  bool same = ok && std::memcmp(&h, &want, sizeof h) == 0;
  if (same && bytes > 0) ok = std::fread(out, bytes, 1, f) == 1;
  if (f != nullptr) std::fclose(f);
  if (!ok) return failed(kSystemError, std::string(call) + ": cannot read " + path + ": " + std::strerror(errno));
  if (!same) {
    return failed(kInvalidArgument, std::string(call) + ": rank " + std::to_string(r) + " called with count " + std::to_string(h.count) +
                  ", type " + std::to_string(h.type) + ", world " + std::to_string(h.world) + "; rank " + std::to_string(c.rank) +
                  " with " + std::to_string(want.count) + ", " + std::to_string(want.type) + ", " + std::to_string(want.world));
  }
  return kSuccess;
}

float fromBf16(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; std::memcpy(&f, &u, 4); return f; }

uint16_t toBf16(float f) {   // round to nearest even, NaN kept a NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** Sums every rank's data of `seq` in rank order into acc (float, whatever the type). */
int sumRanks(const Comm& c, uint64_t seq, const Header& h, std::vector<float>& acc, const char* call) {
  size_t n = h.count, bytes = n * (h.type == kFloat32 ? 4 : 2);
  std::vector<char> buf(bytes);
  acc.assign(n, 0.0f);
  for (int r = 0; r < c.world; r++) {
    if (int rc = readPeer(c, seq, r, h, buf.data(), bytes, call)) return rc;
    for (size_t i = 0; i < n; i++) {
      float v;
      if (h.type == kFloat32) std::memcpy(&v, buf.data() + 4 * i, 4);
      else { uint16_t b; std::memcpy(&b, buf.data() + 2 * i, 2); v = fromBf16(b); }
      acc[i] = r == 0 ? v : acc[i] + v;
    }
  }
  return kSuccess;
}

}  // namespace

extern "C" {

const char* ncclGetErrorString(int r) {
  return r == kSuccess ? "no error" : r == kSystemError ? "unhandled system error (emulated; see the message on stderr)"
       : r == kInvalidArgument ? "invalid argument (emulated; see the message on stderr)" : "emulated NCCL error";
}

int ncclGetVersion(int* v) { *v = 22799; return kSuccess; }   // "2.27.99": no release has that patch number

int ncclGetUniqueId(ncclUniqueId* id) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/llmts-nccl-XXXXXX";
  if (pattern.size() + 1 > sizeof id->internal - sizeof kMagic) return failed(kSystemError, "ncclGetUniqueId: TMPDIR is too long for an id");
  std::vector<char> path(pattern.begin(), pattern.end());
  path.push_back('\0');
  if (mkdtemp(path.data()) == nullptr) return failed(kSystemError, "ncclGetUniqueId: cannot make " + pattern + ": " + std::strerror(errno));
  std::memset(id->internal, 0, sizeof id->internal);
  std::memcpy(id->internal, kMagic, sizeof kMagic);
  std::memcpy(id->internal + sizeof kMagic, path.data(), path.size());
  return kSuccess;
}

int ncclCommInitRank(Comm** comm, int world, ncclUniqueId id, int rank) {
  const char* call = "ncclCommInitRank";
  if (std::memcmp(id.internal, kMagic, sizeof kMagic) != 0) return failed(kInvalidArgument, std::string(call) + ": not an id of ncclGetUniqueId");
  if (world < 1 || rank < 0 || rank >= world) {
    return failed(kInvalidArgument, std::string(call) + ": rank " + std::to_string(rank) + " of world " + std::to_string(world));
  }
  std::string dir(id.internal + sizeof kMagic, strnlen(id.internal + sizeof kMagic, sizeof id.internal - sizeof kMagic));
  if (access(dir.c_str(), W_OK) != 0) return failed(kInvalidArgument, std::string(call) + ": the id's folder " + dir + " is gone (used already?)");
  Comm* c = new Comm{dir, world, rank};
  Header h{0, -1, world};
  int rc = publish(*c, 0, h, nullptr, 0, call);
  if (rc == kSuccess) rc = awaitAll(*c, 0, call);
  for (int r = 0; rc == kSuccess && r < world; r++) rc = readPeer(*c, 0, r, h, nullptr, 0, call);
  if (rc != kSuccess) { delete c; return rc; }
  c->seq = 1;
  *comm = c;
  return kSuccess;
}

int ncclAllReduce(uint64_t send, uint64_t recv, size_t count, int type, int op, Comm* c, void*) {
  const char* call = "ncclAllReduce";
  if (c == nullptr) return failed(kInvalidArgument, std::string(call) + ": no communicator");
  if (type != kFloat32 && type != kBfloat16) return failed(kInvalidArgument, std::string(call) + ": datatype " + std::to_string(type) + " (the emulator sums float32 and bfloat16)");
  if (op != 0) return failed(kInvalidArgument, std::string(call) + ": op " + std::to_string(op) + " (the emulator only sums)");
  size_t bytes = count * (type == kFloat32 ? 4 : 2);
  if (bytes > 0 && (!emu_in_device_memory(send, bytes) || !emu_in_device_memory(recv, bytes))) {
    return failed(kInvalidArgument, std::string(call) + ": " + std::to_string(count) + " elements at the send or receive buffer run outside device memory");
  }
  if (emu_plan_only()) return kSuccess;
  uint64_t seq = c->seq++;
  Header h{count, type, c->world};
  std::vector<float> acc;
  int rc = publish(*c, seq, h, (const void*)send, bytes, call);
  if (rc == kSuccess) rc = awaitAll(*c, seq, call);
  if (rc == kSuccess) rc = sumRanks(*c, seq, h, acc, call);
  if (rc != kSuccess) return rc;
  for (size_t i = 0; i < count; i++) {
    if (type == kFloat32) ((float*)recv)[i] = acc[i];
    else ((uint16_t*)recv)[i] = toBf16(acc[i]);
  }
  return kSuccess;
}

/** Leaves the communicator. The rank that leaves last (the one to claim the last done.<k>) removes the folder: by
 *  then every rank has read every file. */
int ncclCommDestroy(Comm* c) {
  if (c == nullptr) return failed(kInvalidArgument, "ncclCommDestroy: no communicator");
  int slot = 0;
  for (; slot < c->world; slot++) {
    int fd = open((c->dir + "/done." + std::to_string(slot)).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd >= 0) { close(fd); break; }
  }
  if (slot == c->world - 1) {
    if (DIR* d = opendir(c->dir.c_str())) {
      while (dirent* e = readdir(d)) if (e->d_name[0] != '.') unlink((c->dir + "/" + e->d_name).c_str());
      closedir(d);
    }
    rmdir(c->dir.c_str());
  }
  delete c;
  return kSuccess;
}

}  // extern "C"
