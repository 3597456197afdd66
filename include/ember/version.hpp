#pragma once

#define EMBER_VERSION_MAJOR 0
#define EMBER_VERSION_MINOR 1
#define EMBER_VERSION_PATCH 0

namespace ember {
/// "0.1.0"
const char* version();
}  // namespace ember
