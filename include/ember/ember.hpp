// Umbrella header: everything a user of the tensor library needs.
#pragma once

#include "ember/autograd.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/device.hpp"
#include "ember/dtype.hpp"
#include "ember/error.hpp"
#include "ember/memory.hpp"
#include "ember/ops.hpp"
#include "ember/random.hpp"
#include "ember/scalar.hpp"
#include "ember/state_dict.hpp"
#include "ember/tensor.hpp"
#include "ember/version.hpp"
