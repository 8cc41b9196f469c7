#pragma once
#include <cstdint>
// Fills `count` bf16 elements on the device with pseudo-random values of mean 0 and variance 1.
void fill_random_bf16(void* data, int64_t count, uint64_t seed);
