// CUDA runtime queries. Safe to call in any build: without CUDA, or on a machine without a GPU or
// driver, every query answers "no GPU" (any failing device query means no GPU, never a crash).
#pragma once

namespace ember::cuda {

/// True when Ember was built with CUDA (EMBER_CUDA) .
bool is_built();
/// True when built with CUDA and at least one device answers.
bool is_available();
/// Number of usable devices; 0 when the query fails for any reason.
int device_count();

}  // namespace ember::cuda
