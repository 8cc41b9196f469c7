// The GPU forward pass: the CPU Session's algorithm (pre-norm blocks, GQA, RoPE, SwiGLU, chunked prefill
// through the Delta Attention operator, dense decode) with bf16 weights and activations, fp32 residual
// stream and fp32 accumulation, everything on one CUDA stream.
#include "dattn/model/cuda_session.h"
#include "dattn/model/gguf_model.h"

#include <algorithm>
#include <cmath>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "decode_attention.h"
#include "device_buffer.h"
#include "device_weights.h"
#include "gemm.h"
#include "model_kernels.h"
#include "stage_profiler.h"

namespace dattn::model {

using namespace cuda_detail;

namespace {

// Rows of logits computed per GEMM when all are asked for: bounds the buffer at this many * vocab floats.
constexpr int64_t kLogitBlockRows = 64;

class Stream {
 public:
  Stream() { check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

void check_plan(const AttentionPlan& plan, int64_t layers) {
  for (const auto& [layer, p] : plan.layer_overrides)
    DATTN_CHECK(layer >= 0 && layer < layers, "attention override for layer {}, but the model has {} layers", layer,
                layers);
  DATTN_CHECK(plan.dense_first_layers >= 0, "dense_first_layers must be >= 0, got {}", plan.dense_first_layers);
}

}  // namespace

bool cuda_session_available() { return cuda::available(); }

std::unique_ptr<InferenceSession> make_cuda_session(const std::filesystem::path& model_dir, SessionOptions options) {
  DATTN_CHECK(cuda::available(), "--device cuda: no CUDA device is present; use --device cpu");
  const ModelConfig config = load_model_config(model_dir);
  const Checkpoint checkpoint = open_any_checkpoint(model_dir, DType::bf16);
  return std::make_unique<CudaSession>(config, checkpoint, std::move(options));
}

struct CudaSession::Impl {
  ModelConfig config;
  SessionOptions options;
  int64_t position = 0;
  int64_t padded_head_dim = 0;
  Stream stream;  // declared before every buffer: destroyed after them
  Gemm gemm{stream.get()};
  StageProfiler profiler{stream.get()};
  DeviceWeights weights;
  DeviceBuffer inv_freq;
  DeviceBuffer k_cache, v_cache;  // (layers, context, h_kv, padded_head_dim) bf16
  int64_t max_rows = 0, max_logit_rows = 0;
  DeviceBuffer ids, x, normed, qkv, q, attn, gate_up, act, logits;
  DeviceBuffer decode_partials;  // split results of the decode kernel
  uint64_t workspace_bytes = 0;
  uint64_t peak_in_use = 0;

  void sample_memory() { peak_in_use = std::max(peak_in_use, device_bytes_in_use()); }
  void check_ids(std::span<const int32_t> ids) const;
  void forward_chunk(std::span<const int32_t> ids, bool decode_step, int64_t first_logit_row, float* host_logits);
  void attention(int64_t layer, int64_t rows, bool decode_step);
};

CudaSession::CudaSession(const ModelConfig& config, const Checkpoint& checkpoint, SessionOptions options) {
  DATTN_CHECK(cuda::available(), "cuda session: no CUDA device is present");
  impl_ = std::make_unique<Impl>();  // creates the stream and the cuBLAS handle
  Impl& s = *impl_;
  s.config = config;
  s.options = std::move(options);
  const ModelConfig& c = s.config;
  DATTN_CHECK(s.options.context >= 1, "context must be >= 1 token, got {}", s.options.context);
  DATTN_CHECK(s.options.chunk_size >= 1, "prefill chunk size must be >= 1, got {}", s.options.chunk_size);
  if (c.sliding_window)
    DATTN_CHECK(s.options.context <= *c.sliding_window,
                "context {} exceeds the model's sliding_window {} (config.json): sliding-window attention is not "
                "supported, so the context must fit in the window",
                s.options.context, *c.sliding_window);
  check_plan(s.options.attention, c.num_layers);
  s.padded_head_dim = padded_head_dim(c.head_dim);

  s.weights = upload_weights(c, checkpoint);
  const std::vector<float> inv_freq = rope_inverse_frequencies(c.rope, c.head_dim);
  s.inv_freq = DeviceBuffer(inv_freq.size() * 4, "the rotary frequencies");
  check_cuda(cudaMemcpy(s.inv_freq.data(), inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice),
             "uploading the rotary frequencies");

  // allocated up front: a context that cannot fit fails here, with its size, not mid-prompt
  s.k_cache = DeviceBuffer(kv_cache_bytes() / 2, "the K cache");
  s.v_cache = DeviceBuffer(kv_cache_bytes() / 2, "the V cache");

  const int64_t rows = s.max_rows = std::min(s.options.chunk_size, s.options.context);
  s.max_logit_rows = std::min(rows, kLogitBlockRows);
  const int64_t hidden = c.hidden_size, q_dim = c.num_heads * c.head_dim, kv_dim = c.num_kv_heads * c.head_dim;
  const int64_t q_padded = c.num_heads * s.padded_head_dim, inter = c.intermediate_size;
  s.ids = DeviceBuffer(size_t(rows) * 4, "token ids");
  s.x = DeviceBuffer(size_t(rows * hidden) * 4, "the residual stream");
  s.normed = DeviceBuffer(size_t(rows * hidden) * 2, "normed activations");
  s.qkv = DeviceBuffer(size_t(rows * (q_dim + 2 * kv_dim)) * 2, "q/k/v projections");
  s.q = DeviceBuffer(size_t(rows * q_padded) * 2, "queries");
  s.attn = DeviceBuffer(size_t(rows * q_padded) * 2, "attention output");
  s.gate_up = DeviceBuffer(size_t(rows * 2 * inter) * 2, "gate/up projections");
  s.act = DeviceBuffer(size_t(rows * inter) * 2, "SwiGLU output");
  s.logits = DeviceBuffer(size_t(s.max_logit_rows * c.vocab_size) * 4, "logits");
  s.decode_partials = DeviceBuffer(
      size_t(decode_partials_floats(s.options.context, int(c.num_heads), int(s.padded_head_dim))) * 4,
      "decode attention partials");
  for (const DeviceBuffer* b : {&s.ids, &s.x, &s.normed, &s.qkv, &s.q, &s.attn, &s.gate_up, &s.act, &s.logits,
                                &s.decode_partials})
    s.workspace_bytes += b->bytes();
  s.sample_memory();
}

CudaSession::~CudaSession() = default;

void CudaSession::Impl::check_ids(std::span<const int32_t> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    DATTN_CHECK(tokens[i] >= 0 && tokens[i] < config.vocab_size,
                "token id {} at index {} is outside the vocabulary [0, {})", tokens[i], i, config.vocab_size);
  DATTN_CHECK(position + int64_t(tokens.size()) <= options.context,
              "{} tokens do not fit the context: {} already cached, context is {} tokens (raise --ctx)", tokens.size(),
              position, options.context);
}

std::vector<float> CudaSession::prefill(std::span<const int32_t> tokens, const PrefillOptions& options) {
  Impl& s = *impl_;
  DATTN_CHECK(!tokens.empty(), "prefill needs at least one token");
  s.check_ids(tokens);
  const int64_t n = int64_t(tokens.size()), vocab = s.config.vocab_size;
  std::vector<float> logits(size_t(options.all_logits ? n * vocab : vocab));
  const int64_t chunk =
      options.chunk_size > 0 ? std::min(options.chunk_size, s.options.chunk_size) : s.options.chunk_size;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t rows = std::min(chunk, n - start);
    int64_t first_logit_row = rows;  // none
    float* out = logits.data();
    if (options.all_logits) {
      first_logit_row = 0;
      out += start * vocab;
    } else if (start + rows == n) {
      first_logit_row = rows - 1;
    }
    s.forward_chunk(tokens.subspan(size_t(start), size_t(rows)), false, first_logit_row, out);
    if (options.on_progress) options.on_progress(start + rows, n);
  }
  return logits;
}

std::vector<float> CudaSession::decode(int32_t id) {
  Impl& s = *impl_;
  s.check_ids(std::span<const int32_t>(&id, 1));
  std::vector<float> logits(size_t(s.config.vocab_size));
  s.forward_chunk(std::span<const int32_t>(&id, 1), true, 0, logits.data());
  return logits;
}

void CudaSession::Impl::attention(int64_t layer, int64_t rows, bool decode_step) {
  const ModelConfig& c = config;
  const int64_t dp = padded_head_dim, hq = c.num_heads, hkv = c.num_kv_heads, ctx = options.context;
  const int64_t n_kv = position + rows;
  uint16_t* k_layer = k_cache.as<uint16_t>() + layer * ctx * hkv * dp;
  uint16_t* v_layer = v_cache.as<uint16_t>() + layer * ctx * hkv * dp;
  AttentionParams params = options.attention.for_layer(layer);
  // the model's scale (1/sqrt(head_dim), times yarn's attention factor squared): the operator's default
  // would use the padded head_dim, and zero-padded lanes add nothing to q.k
  if (params.scale == 0.0) params.scale = c.attention_scale();
  if (decode_step && hq / hkv <= kDecodeMaxGroup) {
    // decode is dense (spec); the split-KV kernel keeps every SM busy on one query row
    decode_attention({q.as<uint16_t>(), k_layer, v_layer, attn.as<uint16_t>(), n_kv, int(hq), int(hkv), int(dp),
                      float(params.scale), decode_partials.as<float>()},
                     stream.get());
    return;
  }
  if (decode_step) params.mode = AttentionMode::dense;
  params.stream = stream.get();
  const TensorView q_view{q.data(), DType::bf16, Device::cuda, {1, rows, hq, dp}, {rows * hq * dp, hq * dp, dp, 1}};
  const TensorView out_view{attn.data(), DType::bf16, Device::cuda, {1, rows, hq, dp}, {rows * hq * dp, hq * dp, dp, 1}};
  const TensorView k_view{k_layer, DType::bf16, Device::cuda, {1, n_kv, hkv, dp}, {ctx * hkv * dp, hkv * dp, dp, 1}};
  const TensorView v_view{v_layer, DType::bf16, Device::cuda, {1, n_kv, hkv, dp}, {ctx * hkv * dp, hkv * dp, dp, 1}};
  delta_attention(q_view, k_view, v_view, out_view, params);
}

void CudaSession::Impl::forward_chunk(std::span<const int32_t> tokens, bool decode_step, int64_t first_logit_row,
                                      float* host_logits) {
  const ModelConfig& c = config;
  const int64_t rows = int64_t(tokens.size()), hidden = c.hidden_size, inter = c.intermediate_size;
  const int64_t d = c.head_dim, hq = c.num_heads, hkv = c.num_kv_heads, dp = padded_head_dim;
  const int64_t qkv_dim = (hq + 2 * hkv) * d, ctx = options.context;
  const float eps = float(c.rms_norm_eps);
  cudaStream_t st = stream.get();

  profiler.begin();
  check_cuda(cudaMemcpyAsync(ids.data(), tokens.data(), size_t(rows) * 4, cudaMemcpyHostToDevice, st),
             "copying token ids");
  embed_rows(ids.as<int32_t>(), weights.embed_tokens, rows, hidden, x.as<float>(), st);
  profiler.mark("embed");
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    const DeviceLayer& w = weights.layers[size_t(layer)];
    rms_norm_to_bf16(x.as<float>(), w.input_norm, rows, hidden, eps, normed.as<uint16_t>(), st);
    profiler.mark("norms");
    gemm.linear(normed.as<uint16_t>(), rows, hidden, w.qkv_weight, qkv_dim, qkv.data(), GemmOut::bf16, false);
    profiler.mark("gemm qkv");
    QkvEpilogueArgs e{};
    e.qkv = qkv.as<uint16_t>();
    e.bias = w.qkv_bias;
    e.q_norm = w.q_norm;
    e.k_norm = w.k_norm;
    e.norm_eps = eps;
    e.inv_freq = inv_freq.as<float>();
    e.rows = rows;
    e.first_position = position;
    e.heads_q = int(hq);
    e.heads_kv = int(hkv);
    e.head_dim = int(d);
    e.padded_head_dim = int(dp);
    e.q_out = q.as<uint16_t>();
    e.k_cache = k_cache.as<uint16_t>() + layer * ctx * hkv * dp;
    e.v_cache = v_cache.as<uint16_t>() + layer * ctx * hkv * dp;
    qkv_epilogue(e, st);
    profiler.mark("rope + kv cache");

    attention(layer, rows, decode_step);
    profiler.mark("attention");

    gemm.linear(attn.as<uint16_t>(), rows, hq * dp, w.o_weight, hidden, x.data(), GemmOut::f32, true);
    if (w.o_bias) add_bias_rows(x.as<float>(), w.o_bias, rows, hidden, st);
    profiler.mark("gemm o");
    rms_norm_to_bf16(x.as<float>(), w.post_attention_norm, rows, hidden, eps, normed.as<uint16_t>(), st);
    profiler.mark("norms");
    gemm.linear(normed.as<uint16_t>(), rows, hidden, w.gate_up_weight, 2 * inter, gate_up.data(), GemmOut::bf16,
                false);
    profiler.mark("gemm gate/up");
    swiglu(gate_up.as<uint16_t>(), w.gate_up_bias, rows, inter, act.as<uint16_t>(), st);
    profiler.mark("swiglu");
    gemm.linear(act.as<uint16_t>(), rows, inter, w.down_weight, hidden, x.data(), GemmOut::f32, true);
    if (w.down_bias) add_bias_rows(x.as<float>(), w.down_bias, rows, hidden, st);
    profiler.mark("gemm down");
  }

  for (int64_t first = first_logit_row; first < rows; first += max_logit_rows) {
    const int64_t n = std::min(max_logit_rows, rows - first);
    rms_norm_to_bf16(x.as<float>() + first * hidden, weights.final_norm, n, hidden, eps, normed.as<uint16_t>(), st);
    gemm.linear(normed.as<uint16_t>(), n, hidden, weights.lm_head, c.vocab_size, logits.data(), GemmOut::f32, false);
    check_cuda(cudaMemcpyAsync(host_logits + (first - first_logit_row) * c.vocab_size, logits.data(),
                               size_t(n * c.vocab_size) * 4, cudaMemcpyDeviceToHost, st),
               "copying logits to the host");
  }
  profiler.mark("lm head + logits copy");
  check_cuda(cudaStreamSynchronize(st), "the forward pass");
  profiler.collect();
  position += rows;
  // a decode step allocates nothing (the cache and workspace are preallocated), so only a prefill chunk
  // (cuBLAS workspace, the attention's stream-ordered Δ scratch) can raise the peak; skipping the query
  // keeps cudaMemGetInfo off the per-token path
  if (!decode_step) sample_memory();
}

void CudaSession::set_attention(AttentionPlan plan) {
  check_plan(plan, impl_->config.num_layers);
  impl_->options.attention = std::move(plan);
}

int64_t CudaSession::position() const { return impl_->position; }
int64_t CudaSession::context() const { return impl_->options.context; }
void CudaSession::reset() { impl_->position = 0; }
const ModelConfig& CudaSession::config() const { return impl_->config; }
uint64_t CudaSession::peak_device_bytes() const { return impl_->peak_in_use; }

uint64_t CudaSession::kv_cache_bytes() const {
  const ModelConfig& c = impl_->config;
  return 2ull * uint64_t(c.num_layers) * uint64_t(impl_->options.context) * uint64_t(c.num_kv_heads) *
         uint64_t(impl_->padded_head_dim) * 2ull;
}

void CudaSession::set_profiling(bool enabled) {
  impl_->profiler.set_enabled(enabled);
  impl_->profiler.clear();
}

std::vector<std::pair<std::string, double>> CudaSession::take_profile() {
  std::vector<std::pair<std::string, double>> totals = impl_->profiler.totals();
  impl_->profiler.clear();
  return totals;
}

DeviceMemoryReport CudaSession::memory() const {
  return {impl_->weights.bytes, kv_cache_bytes(), impl_->workspace_bytes, impl_->peak_in_use};
}

}  // namespace dattn::model
