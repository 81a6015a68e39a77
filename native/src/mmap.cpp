// mapFile(path): a whole file mapped into memory (zero-copy weight loading; src/io/safetensors.ts).
// The mapping is MAP_PRIVATE with read and write access: a write (an in-place LoRA merge, a PiSSA
// residual) copies the touched page for this process only, so the file on disk is never modified,
// and the typed arrays over it behave like ordinary writable arrays. The returned external
// ArrayBuffer owns the mapping: its finalizer munmaps when the garbage collector frees it, i.e.
// after the last typed-array view into it is gone.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define ATTUNE_HAS_MMAP 1
#endif

namespace attune {

#ifdef ATTUNE_HAS_MMAP
namespace {
void unmapFile(napi_env, void* data, void* hint) { munmap(data, reinterpret_cast<size_t>(hint)); }
}  // namespace
#endif

// mapFile(path: string): ArrayBuffer | null. null where the platform has no mmap or the file is
// empty (callers then read the file instead); throws Error with the OS reason when open/mmap fail.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "mapFile: expected one argument, a file path (string)");
#ifdef ATTUNE_HAS_MMAP
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "mapFile: cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    close(fd);
    throw Napi::Error::New(env, "mapFile: cannot stat " + path + ": " + std::strerror(e));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    close(fd);
    return env.Null();
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int e = errno;
  close(fd);  // the mapping keeps the file referenced
  if (data == MAP_FAILED) throw Napi::Error::New(env, "mapFile: cannot map " + path + ": " + std::strerror(e));
#ifdef MADV_WILLNEED
  madvise(data, size, MADV_WILLNEED);  // start read-ahead of a cold file
#endif
  napi_value buffer;
  const napi_status status =
      napi_create_external_arraybuffer(env, data, size, unmapFile, reinterpret_cast<void*>(size), &buffer);
  if (status != napi_ok) {
    munmap(data, size);
    return env.Null();  // e.g. a runtime that forbids external buffers: read instead
  }
  return Napi::Value(env, buffer);
#else
  return env.Null();
#endif
}

}  // namespace attune
