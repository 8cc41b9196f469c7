// Delta attention on host tensors through the installed library, and what a bad argument reports.
#include <dattn/core/error.h>
#include <dattn/core/tensor.h>
#include <dattn/delta/delta_attention.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const std::array<int64_t, 4> shape{1, 1024, 4, 64};  // (batch, seq, heads, head_dim)
  std::vector<float> q(1024 * 4 * 64), k(q.size()), v(q.size()), out(q.size());
  for (size_t i = 0; i < q.size(); ++i) {
    q[i] = std::sin(0.1f * float(i));
    k[i] = std::cos(0.3f * float(i));
    v[i] = std::sin(0.7f * float(i));
  }
  auto view = [&](std::vector<float>& data) {
    return dattn::TensorView{data.data(), dattn::DType::f32, dattn::Device::cpu, shape,
                             dattn::contiguous_strides(shape)};
  };

  dattn::AttentionParams p;  // mode delta, window 2048, sink 1024, gamma 64 (paper defaults)
  p.window = 128;
  p.sink = 16;
  dattn::delta_attention(view(q), view(k), view(v), view(out), p);
  std::printf("out[0..3] = %.6f %.6f %.6f %.6f\n", out[0], out[1], out[2], out[3]);

  p.gamma = 0;
  try {
    dattn::delta_attention(view(q), view(k), view(v), view(out), p);
    return 1;  // a gamma of 0 must be rejected
  } catch (const dattn::Error& e) {
    std::printf("error: %s\n", e.what());
  }
  return 0;
}
