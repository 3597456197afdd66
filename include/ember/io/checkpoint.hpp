// Training checkpoints: model, optimizer and scheduler state, RNG state, the step and user
// metadata in one safetensors file (Python's safetensors opens it), written atomically and
// verified by a checksum on load. See docs/serialization.md for the layout.
//
//   ember::Checkpoint ckpt;
//   ckpt.model = model->state_dict();
//   ckpt.optimizer = opt.state_dict();
//   ckpt.step = step;
//   ember::save_checkpoint("run/last.safetensors", ckpt);
//   ...
//   ember::Checkpoint c = ember::load_checkpoint("run/last.safetensors");
//   model->load_state_dict(c.model); opt.load_state_dict(c.optimizer); ember::restore_rng(c);
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ember/random.hpp"
#include "ember/state_dict.hpp"

namespace ember {

/// A generator's position: its seed and Philox offset.
struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;

  static GeneratorState capture(const Generator& gen);
  /// Sets gen's seed and offset; gen then continues the captured stream.
  void restore(Generator& gen) const;
  bool operator==(const GeneratorState&) const = default;
};

/// Everything needed to resume training.
struct Checkpoint {
  StateDict model;
  StateDict optimizer;
  StateDict scheduler;
  int64_t step = 0;
  /// User metadata. Keys starting with "ember." are reserved (ValueError on save).
  std::map<std::string, std::string> metadata;
  /// Generator states by name. save_checkpoint records the default generator under "default"
  /// unless this map already holds that key; add others with GeneratorState::capture.
  std::map<std::string, GeneratorState> rng;
};

/// The checkpoint format version this build writes and the newest it reads.
inline constexpr int kCheckpointFormatVersion = 1;

/// Writes ckpt to path atomically (temporary file in the same directory, fsync, rename, fsync of
/// the directory): on any failure the previous file at path is untouched, the temporary file is
/// removed and IOError is thrown.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

/// Reads and verifies a checkpoint: IOError when the file is not a valid safetensors file, lacks
/// Ember's checkpoint fields, was written by a newer format version, or fails its checksum (any
/// changed byte). The tensors are views of a private mapping of the file (see load_safetensors).
Checkpoint load_checkpoint(const std::string& path);

/// Restores the default generator from ckpt.rng["default"] and each generator in `generators` from
/// the entry of the same name. IOError when a requested entry is missing.
void restore_rng(const Checkpoint& ckpt, const std::map<std::string, Generator>& generators = {});

}  // namespace ember
