// ember::data umbrella: datasets, samplers, the DataLoader, file readers, transforms and text.
#pragma once

#include "ember/data/dataloader.hpp"
#include "ember/data/dataset.hpp"
#include "ember/data/datasets.hpp"
#include "ember/data/sampler.hpp"
#include "ember/data/text.hpp"
#include "ember/data/transforms.hpp"
