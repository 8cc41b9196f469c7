// Which attention backends this build can run on this machine. Attention itself is called through
// dattn::delta_attention (dattn/delta/delta_attention.h), which checks every argument and picks the backend.
#pragma once

namespace dattn::cuda {
bool available();  // built with CUDA and a device is present
}  // namespace dattn::cuda
