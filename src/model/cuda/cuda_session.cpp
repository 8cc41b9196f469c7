// The GPU session: the CPU Session's algorithm (chunked prefill through the Delta Attention operator,
// dense decode) on the device forward pass (CudaForward) with a KV cache of one block that holds the
// whole context.
#include "dattn/model/cuda_session.h"
#include "dattn/model/gguf_model.h"

#include <algorithm>

#include "cuda_forward.h"
#include "dattn/attn/backends.h"
#include "dattn/core/error.h"

namespace dattn::model {

using namespace cuda_detail;

bool cuda_session_available() { return cuda::available(); }

std::unique_ptr<InferenceSession> make_cuda_session(const std::filesystem::path& model_dir, SessionOptions options) {
  DATTN_CHECK(cuda::available(), "--device cuda: no CUDA device is present; use --device cpu");
  const ModelConfig config = load_model_config(model_dir);
  const Checkpoint checkpoint = open_any_checkpoint(model_dir, DType::bf16);
  return std::make_unique<CudaSession>(config, checkpoint, std::move(options));
}

struct CudaSession::Impl {
  SessionOptions options;
  int64_t position = 0;
  std::unique_ptr<CudaForward> forward;
  std::vector<LayerAnchorGap> gaps;  // of the current / last prefill

  void check_ids(std::span<const int32_t> ids) const;
  void forward_chunk(std::span<const int32_t> ids, bool decode_step, int64_t first_logit_row, float* host_logits);
};

CudaSession::CudaSession(const ModelConfig& config, const Checkpoint& checkpoint, SessionOptions options) {
  DATTN_CHECK(cuda::available(), "cuda session: no CUDA device is present");
  impl_ = std::make_unique<Impl>();
  Impl& s = *impl_;
  s.options = std::move(options);
  const ModelConfig& c = config;
  DATTN_CHECK(s.options.context >= 1, "context must be >= 1 token, got {}", s.options.context);
  DATTN_CHECK(s.options.chunk_size >= 1, "prefill chunk size must be >= 1, got {}", s.options.chunk_size);
  if (c.sliding_window)
    DATTN_CHECK(s.options.context <= *c.sliding_window,
                "context {} exceeds the model's sliding_window {} (config.json): sliding-window attention is not "
                "supported, so the context must fit in the window",
                s.options.context, *c.sliding_window);
  s.options.attention.validate(c.num_layers);
  CudaForwardOptions fo;
  fo.num_blocks = 1;
  fo.block_tokens = fo.max_context = s.options.context;
  fo.max_rows = std::min(s.options.chunk_size, s.options.context);
  s.forward = std::make_unique<CudaForward>(c, checkpoint, fo);
}

CudaSession::~CudaSession() = default;

void CudaSession::Impl::check_ids(std::span<const int32_t> tokens) const {
  const int64_t vocab = forward->config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i)
    DATTN_CHECK(tokens[i] >= 0 && tokens[i] < vocab, "token id {} at index {} is outside the vocabulary [0, {})",
                tokens[i], i, vocab);
  DATTN_CHECK(position + int64_t(tokens.size()) <= options.context,
              "{} tokens do not fit the context: {} already cached, context is {} tokens (raise --ctx)", tokens.size(),
              position, options.context);
}

std::vector<float> CudaSession::prefill(std::span<const int32_t> tokens, const PrefillOptions& options) {
  Impl& s = *impl_;
  DATTN_CHECK(!tokens.empty(), "prefill needs at least one token");
  s.check_ids(tokens);
  const ModelConfig& c = s.forward->config();
  return prefill_in_chunks(tokens, s.options.chunk_size, options, c.vocab_size, s.options.attention, c.num_layers,
                           s.gaps, [&](std::span<const int32_t> chunk, int64_t first_logit_row, float* logits) {
                             s.forward_chunk(chunk, false, first_logit_row, logits);
                           });
}

std::vector<float> CudaSession::decode(int32_t id) {
  Impl& s = *impl_;
  s.check_ids(std::span<const int32_t>(&id, 1));
  std::vector<float> logits(size_t(s.forward->config().vocab_size));
  s.forward_chunk(std::span<const int32_t>(&id, 1), true, 0, logits.data());
  return logits;
}

void CudaSession::Impl::forward_chunk(std::span<const int32_t> tokens, bool decode_step, int64_t first_logit_row,
                                      float* host_logits) {
  static constexpr int32_t kOnlyBlock = 0;
  const ForwardBatch batch{tokens, {SequenceRows{.first_row = 0,
                                                 .rows = int64_t(tokens.size()),
                                                 .position = position,
                                                 .decode = decode_step,
                                                 .logits_from = first_logit_row,
                                                 .attention = &options.attention,
                                                 .block_table = std::span<const int32_t>(&kOnlyBlock, 1),
                                                 .anchor_gaps = &gaps}}};
  run_forward(*forward, batch, forward->config().num_layers, host_logits);
  forward->synchronize();
  forward->profiler().collect();
  position += batch.rows();
  // a decode step allocates nothing (the cache and workspace are preallocated), so only a prefill chunk
  // (cuBLAS workspace, the attention's stream-ordered Δ scratch) can raise the peak; skipping the query
  // keeps cudaMemGetInfo off the per-token path
  if (!decode_step) forward->sample_memory();
}

void CudaSession::set_attention(AttentionPlan plan) {
  plan.validate(impl_->forward->config().num_layers);
  impl_->options.attention = std::move(plan);
}

int64_t CudaSession::position() const { return impl_->position; }
int64_t CudaSession::context() const { return impl_->options.context; }
void CudaSession::reset() { impl_->position = 0; }
const ModelConfig& CudaSession::config() const { return impl_->forward->config(); }
std::vector<LayerAnchorGap> CudaSession::anchor_gaps() const { return impl_->gaps; }
uint64_t CudaSession::peak_device_bytes() const { return impl_->forward->memory().peak_in_use; }
uint64_t CudaSession::kv_cache_bytes() const { return impl_->forward->memory().kv_cache; }

void CudaSession::set_profiling(bool enabled) {
  impl_->forward->profiler().set_enabled(enabled);
  impl_->forward->profiler().clear();
}

std::vector<std::pair<std::string, double>> CudaSession::take_profile() {
  std::vector<std::pair<std::string, double>> totals = impl_->forward->profiler().totals();
  impl_->forward->profiler().clear();
  return totals;
}

DeviceMemoryReport CudaSession::memory() const { return impl_->forward->memory(); }

}  // namespace dattn::model
