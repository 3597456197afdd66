// Umbrella include for ember::optim: the optimizers, the learning-rate schedulers and GradScaler.
#pragma once

#include "ember/optim/adagrad.hpp"
#include "ember/optim/adam.hpp"
#include "ember/optim/adamw.hpp"
#include "ember/optim/grad_scaler.hpp"
#include "ember/optim/lion.hpp"
#include "ember/optim/optimizer.hpp"
#include "ember/optim/rmsprop.hpp"
#include "ember/optim/schedulers.hpp"
#include "ember/optim/sgd.hpp"
