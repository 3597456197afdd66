// Umbrella header of ember::nn: the module system, layers, init and functional forms.
#pragma once

#include "ember/nn/functional.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/modules/activation.hpp"
#include "ember/nn/modules/attention.hpp"
#include "ember/nn/modules/conv.hpp"
#include "ember/nn/modules/dropout.hpp"
#include "ember/nn/modules/embedding.hpp"
#include "ember/nn/modules/linear.hpp"
#include "ember/nn/modules/loss.hpp"
#include "ember/nn/modules/normalization.hpp"
#include "ember/nn/modules/pooling.hpp"
#include "ember/nn/modules/transformer.hpp"
