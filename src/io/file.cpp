// POSIX file handling for the I/O layer: mmap for reading, atomic replacement for writing.
#include "io/file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "ember/error.hpp"

namespace ember::io_detail {

namespace {

std::mutex hook_mutex;
std::function<bool(const char*)> write_hook;

// True when the test hook asks this stage to fail.
bool hook_fails(const char* stage) {
  std::function<bool(const char*)> h;
  {
    std::lock_guard<std::mutex> lock(hook_mutex);
    h = write_hook;
  }
  return h && h(stage);
}

// Closes fd on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

void set_atomic_write_hook(std::function<bool(const char* stage)> hook) {
  std::lock_guard<std::mutex> lock(hook_mutex);
  write_hook = std::move(hook);
}

// ---- reading ----

MappedFile::~MappedFile() {
  if (data) ::munmap(data, size);
}

std::shared_ptr<MappedFile> map_file(const std::string& path, const std::string& where) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EMBER_CHECK(fd >= 0, IOError, where, ": cannot open: ", errno_text(errno));
  FdGuard guard{fd};
  struct stat st {};
  EMBER_CHECK(::fstat(fd, &st) == 0, IOError, where, ": cannot stat: ", errno_text(errno));
  EMBER_CHECK(S_ISREG(st.st_mode), IOError, where, ": not a regular file");
  auto m = std::make_shared<MappedFile>();
  if (st.st_size == 0) return m;
  // MAP_PRIVATE + PROT_WRITE: copy-on-write pages, so an in-place op on a loaded tensor changes
  // only this process's copy. MAP_NORESERVE: no swap is reserved for pages never written.
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  EMBER_CHECK(p != MAP_FAILED, IOError, where, ": cannot map ", st.st_size,
              " bytes: ", errno_text(errno));
  m->data = static_cast<uint8_t*>(p);
  m->size = static_cast<size_t>(st.st_size);
  return m;
}

std::string read_prefix(const std::string& path, uint64_t offset, uint64_t length,
                        uint64_t* file_size, const std::string& where) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EMBER_CHECK(fd >= 0, IOError, where, ": cannot open: ", errno_text(errno));
  FdGuard guard{fd};
  struct stat st {};
  EMBER_CHECK(::fstat(fd, &st) == 0, IOError, where, ": cannot stat: ", errno_text(errno));
  EMBER_CHECK(S_ISREG(st.st_mode), IOError, where, ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (file_size) *file_size = size;
  if (offset >= size) return {};
  const uint64_t n = std::min<uint64_t>(length, size - offset);  // never more than the file holds
  std::string out(static_cast<size_t>(n), '\0');
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out.data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    EMBER_CHECK(r >= 0, IOError, where, ": read failed: ", errno_text(errno));
    if (r == 0) break;  // the file shrank under us
    done += static_cast<size_t>(r);
  }
  out.resize(done);
  return out;
}

// ---- atomic writing ----

AtomicWriter::AtomicWriter(const std::string& path, const char* op) : path_(path), op_(op) {
  namespace fs = std::filesystem;
  fs::path p(path);
  EMBER_CHECK(!path.empty() && p.has_filename(), IOError, "[", op, "] '", path,
              "': not a file path");
  dir_ = p.parent_path().empty() ? std::string(".") : p.parent_path().string();
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    std::string name =
        detail::str_cat(".", p.filename().string(), ".tmp.", ::getpid(), ".", counter.fetch_add(1));
    temp_ = (p.parent_path() / name).string();
    if (hook_fails("open")) fail("cannot create the temporary file", EIO);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) break;
    if (errno != EEXIST || attempt > 100) fail("cannot create the temporary file", errno);
  }
  // Keep the permissions of the file being replaced.
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    (void)::fchmod(fd_, st.st_mode & 07777);
}

AtomicWriter::~AtomicWriter() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicWriter::fail(const char* what, int err) const {
  throw IOError(detail::str_cat("[", op_, "] '", path_, "': ", what, " (",
                                temp_.empty() ? dir_ : temp_, "): ", errno_text(err)));
}

void AtomicWriter::write(const void* data, size_t n) {
  if (hook_fails("write")) fail("write failed", EIO);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t r = ::write(fd_, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("write failed", errno);
    p += r;
    n -= static_cast<size_t>(r);
  }
}

void AtomicWriter::write_at(uint64_t offset, const void* data, size_t n) {
  if (hook_fails("write")) fail("write failed", EIO);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t r = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("write failed", errno);
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

void AtomicWriter::commit() {
  if (hook_fails("sync")) fail("fsync failed", EIO);
  if (::fsync(fd_) != 0) fail("fsync failed", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close failed", errno);
  if (hook_fails("rename")) fail("cannot rename the temporary file over the target", EIO);
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    fail("cannot rename the temporary file over the target", errno);
  committed_ = true;  // the target now holds the new, complete file
  // Make the rename itself durable. A failure here is reported, but the new file is in place.
  if (hook_fails("sync_dir")) fail("fsync of the directory failed after the rename", EIO);
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail("cannot open the directory to fsync it after the rename", errno);
  FdGuard guard{dfd};
  if (::fsync(dfd) != 0) fail("fsync of the directory failed after the rename", errno);
}

}  // namespace ember::io_detail
