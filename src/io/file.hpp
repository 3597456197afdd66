// Files for the I/O layer: a private memory mapping for reading, a bounded header read, and an
// atomic writer (temporary file in the target's directory, fsync, rename, fsync of the directory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ember::io_detail {

/// A whole file mapped MAP_PRIVATE (copy-on-write, opened read-only): writes through the mapping
/// never reach the file. Unmapped when the last owner lets go.
struct MappedFile {
  uint8_t* data = nullptr;  // null for an empty file
  size_t size = 0;
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
};

/// Maps path; IOError (prefixed with `where`) when it cannot be opened, is not a regular file or
/// cannot be mapped.
std::shared_ptr<MappedFile> map_file(const std::string& path, const std::string& where);

/// Reads the first min(limit, file size) bytes of path and reports the file's size.
std::string read_prefix(const std::string& path, uint64_t offset, uint64_t length,
                        uint64_t* file_size, const std::string& where);

/// Writes a file atomically. Bytes go to a fresh temporary file next to the target; commit()
/// fsyncs it, renames it over the target and fsyncs the directory. Destroying an uncommitted
/// writer (an exception on the way) removes the temporary file and leaves the target untouched.
class AtomicWriter {
 public:
  AtomicWriter(const std::string& path, const char* op);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(const void* data, size_t n);
  /// Overwrites bytes already written (the checkpoint's checksum field).
  void write_at(uint64_t offset, const void* data, size_t n);
  void commit();
  const std::string& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const char* what, int err) const;
  std::string path_, temp_, dir_;
  const char* op_;
  int fd_ = -1;
  bool committed_ = false;
};

/// Test hook: called with the stage name before each step of every atomic write ("open",
/// "write", "sync", "rename", "sync_dir"); returning true makes that step fail as if the system
/// call had failed with EIO. Pass an empty function to remove it.
void set_atomic_write_hook(std::function<bool(const char* stage)> hook);

}  // namespace ember::io_detail
