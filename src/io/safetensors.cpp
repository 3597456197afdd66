// safetensors reading (memory-mapped, validated) and writing (byte-identical to the reference).
#include "ember/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "ember/ops.hpp"
#include "io/header.hpp"
#include "io/safetensors_impl.hpp"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little endian; a big-endian host needs byte swapping here");

namespace ember {

namespace io_detail {

// ---- writing ----

std::string size_prefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

PreparedWrite prepare_write(const StateDict& tensors,
                            const std::map<std::string, std::string>& metadata, const char* op) {
  struct Item {
    const std::string* name;
    Tensor t;
    const FormatDType* dt;
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (const auto& [name, value] : tensors) {
    EMBER_CHECK(value.defined(), ValueError, "[", op, "] tensor '", name, "' is undefined");
    EMBER_CHECK(name != "__metadata__", ValueError, "[", op,
                "] '__metadata__' is reserved by the format and cannot name a tensor");
    Tensor t = value.detach();
    if (!t.is_cpu()) t = t.cpu();
    t = t.contiguous();
    items.push_back({&name, t, &format_dtype_of(t.dtype())});
  }
  // The reference's order: dtype descending (larger alignment first), then name (bytewise).
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.dt->order != b.dt->order) return a.dt->order > b.dt->order;
    return *a.name < *b.name;
  });
  PreparedWrite w;
  w.entries.reserve(items.size());
  w.tensors.reserve(items.size());
  uint64_t offset = 0;
  for (Item& it : items) {
    SafetensorsEntry e;
    e.name = *it.name;
    e.dtype = it.dt->name;
    e.shape = it.t.sizes().vec();
    e.begin = offset;
    offset += it.t.nbytes();
    e.end = offset;
    w.entries.push_back(std::move(e));
    w.tensors.push_back(std::move(it.t));
  }
  w.data_size = offset;
  w.header = encode_header(w.entries, metadata, op);
  return w;
}

// ---- reading ----

MappedSafetensors map_safetensors(const std::string& path, const std::string& where) {
  MappedSafetensors f;
  f.file = map_file(path, where);
  const char* base = reinterpret_cast<const char*>(f.file->data);
  const uint64_t size = f.file->size;
  uint64_t n = check_header_size(std::string_view(base, std::min<uint64_t>(size, 8)), size, where);
  f.header = parse_header(std::string_view(base + 8, n), size - 8 - n, where);
  f.data_offset = 8 + n;
  return f;
}

namespace {

template <class From, class To>
void widen(const uint8_t* src, To* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(From)), sizeof(From));
    dst[i] = static_cast<To>(v);
  }
}

}  // namespace

StateDict make_tensors(const SafetensorsHeader& header, const uint8_t* buffer,
                       const std::shared_ptr<MappedFile>& mapping, const std::string& where) {
  std::vector<const SafetensorsEntry*> order;
  order.reserve(header.entries.size());
  for (const SafetensorsEntry& e : header.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) { return a->name < b->name; });

  StateDict out;
  for (const SafetensorsEntry* e : order) {
    const FormatDType& ft = *find_format_dtype(e->dtype);
    EMBER_CHECK(ft.ember.has_value(), IOError, where, ": tensor '", e->name, "' has dtype ",
                e->dtype,
                ", which Ember cannot represent (it reads BOOL, U8, I8, I16, U16, I32, "
                "U32, I64, F16, BF16, F32, F64)");
    const DType dt = *ft.ember;
    const uint8_t* src = buffer + e->begin;
    const uint64_t nbytes = e->end - e->begin;
    int64_t numel = 1;
    for (int64_t d : e->shape) numel *= d;  // validated: fits, and equals nbytes / size

    if (e->dtype == "BOOL") {
      for (uint64_t i = 0; i < nbytes; ++i)
        EMBER_CHECK(src[i] <= 1, IOError, where, ": BOOL tensor '", e->name, "' holds byte ",
                    static_cast<int>(src[i]), " at element ", i, " (only 0 and 1 are booleans)");
    }

    Tensor t;
    if (ft.bits != 8 * element_size(dt)) {  // widened: I16/U16 -> int32, U32 -> int64
      t = empty(e->shape, dt);
      if (e->dtype == "I16")
        widen<int16_t>(src, t.data_ptr<int32_t>(), numel);
      else if (e->dtype == "U16")
        widen<uint16_t>(src, t.data_ptr<int32_t>(), numel);
      else
        widen<uint32_t>(src, t.data_ptr<int64_t>(), numel);
    } else if (mapping && numel > 0 && reinterpret_cast<uintptr_t>(src) % element_size(dt) == 0) {
      // A view of the mapping; the deleter's copy of `mapping` keeps it alive.
      std::shared_ptr<MappedFile> keep = mapping;
      t = from_blob(
          const_cast<uint8_t*>(src), e->shape, [keep](void*) {}, dt);
    } else {
      t = empty(e->shape, dt);
      if (nbytes > 0) std::memcpy(t.data_ptr(), src, nbytes);
    }
    out.insert(e->name, std::move(t));
  }
  return out;
}

}  // namespace io_detail

// ---- public API ----

std::string serialize_safetensors(const StateDict& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  io_detail::PreparedWrite w = io_detail::prepare_write(tensors, metadata, "serialize_safetensors");
  std::string out = io_detail::size_prefix(w.header.size());
  out.reserve(8 + w.header.size() + w.data_size);
  out += w.header;
  for (const Tensor& t : w.tensors) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

void save_safetensors(const std::string& path, const StateDict& tensors,
                      const std::map<std::string, std::string>& metadata) {
  io_detail::PreparedWrite w = io_detail::prepare_write(tensors, metadata, "save_safetensors");
  io_detail::AtomicWriter out(path, "save_safetensors");
  out.write(io_detail::size_prefix(w.header.size()).data(), 8);
  out.write(w.header.data(), w.header.size());
  for (const Tensor& t : w.tensors)
    if (t.nbytes() > 0) out.write(t.data_ptr(), t.nbytes());
  out.commit();
}

StateDict load_safetensors(const std::string& path) {
  const std::string where = "[load_safetensors] '" + path + "'";
  io_detail::MappedSafetensors f = io_detail::map_safetensors(path, where);
  return io_detail::make_tensors(f.header, f.file->data + f.data_offset, f.file, where);
}

namespace {

SafetensorsHeader read_header_only(const std::string& path, const char* op) {
  const std::string where = std::string("[") + op + "] '" + path + "'";
  uint64_t size = 0;
  std::string prefix = io_detail::read_prefix(path, 0, 8, &size, where);
  uint64_t n = io_detail::check_header_size(prefix, size, where);
  std::string json = io_detail::read_prefix(path, 8, n, nullptr, where);
  EMBER_CHECK(json.size() == n, IOError, where, ": the file shrank while being read");
  return io_detail::parse_header(json, size - 8 - n, where);
}

}  // namespace

SafetensorsHeader read_safetensors_header(const std::string& path) {
  return read_header_only(path, "read_safetensors_header");
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  return read_header_only(path, "load_safetensors_metadata").metadata;
}

StateDict deserialize_safetensors(std::string_view bytes) {
  const std::string where = "[deserialize_safetensors] buffer";
  uint64_t n = io_detail::check_header_size(bytes.substr(0, 8), bytes.size(), where);
  SafetensorsHeader h = io_detail::parse_header(bytes.substr(8, n), bytes.size() - 8 - n, where);
  return io_detail::make_tensors(h, reinterpret_cast<const uint8_t*>(bytes.data()) + 8 + n, nullptr,
                                 where);
}

std::map<std::string, std::string> deserialize_safetensors_metadata(std::string_view bytes) {
  const std::string where = "[deserialize_safetensors_metadata] buffer";
  uint64_t n = io_detail::check_header_size(bytes.substr(0, 8), bytes.size(), where);
  return io_detail::parse_header(bytes.substr(8, n), bytes.size() - 8 - n, where).metadata;
}

}  // namespace ember
