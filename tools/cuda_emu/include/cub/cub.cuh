// cuda_emu: the CUB subset Ember uses.
#pragma once
#include "block/block_reduce.cuh"
#include "block/block_scan.cuh"
#include "device/device_radix_sort.cuh"
#include "device/device_scan.cuh"
