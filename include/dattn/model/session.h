// One inference stream over a Model on the CPU: a KV cache preallocated for the context, chunked
// prefill through the Delta Attention operator, and dense single-token decode.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "dattn/attn/params.h"
#include "dattn/model/model.h"

namespace dattn::model {

// Which attention each layer uses during prefill. Decode (a one-token step) is always dense.
struct AttentionPlan {
  AttentionParams params{.mode = AttentionMode::dense};  // mode, window, sink, gamma, backend
  int64_t dense_first_layers = 0;                       // layers [0, N) use dense whatever params.mode
  std::map<int64_t, AttentionParams> layer_overrides;   // layer index -> its own params (wins over both)

  // The anchor gap (attn/params.h) of delta layers: reported per layer when asked, and the adaptive policy:
  // when adaptive_gap_threshold > 0, a delta layer whose mean anchor gap over the first chunk of a prompt
  // exceeds it prefills the rest of that prompt densely.
  bool report_anchor_gap = false;
  double adaptive_gap_threshold = 0;

  AttentionParams for_layer(int64_t layer) const;
  // Adds overrides from text like "0-3:dense,10:sparse": the listed layers take that mode with the
  // plan's window, sink and gamma. Throws dattn::Error naming the bad item.
  void add_layer_modes(std::string_view spec);
  // Throws dattn::Error for an override past the model's layers or parameters out of their ranges.
  void validate(int64_t layers) const;
};

// Prefill rows per forward pass when none is given, the same on every device and in every command:
// delta's row plan is per chunk, so the chunk size is part of the result (a prompt of up to this many
// tokens is prefilled in one pass). About 150 KB of activations per row for an 8B model.
inline constexpr int64_t kDefaultPrefillChunk = 16384;
// `chunk` when positive, else kDefaultPrefillChunk.
inline int64_t prefill_chunk_or_default(int64_t chunk) { return chunk > 0 ? chunk : kDefaultPrefillChunk; }

// One layer's anchor gap over the chunks of the last prefill: mean over every (head, anchor), and the largest
// per-head mean of any chunk.
struct LayerAnchorGap {
  int64_t samples = 0;      // (head, anchor) pairs
  double mean = 0, max_head_mean = 0;
  bool went_dense = false;  // the adaptive policy switched the layer to dense after the first chunk
  void add(const AnchorGap& gap);
};

struct SessionOptions {
  int64_t context = 4096;     // tokens the KV cache holds (prompt + generated)
  int64_t chunk_size = kDefaultPrefillChunk;  // prefill rows per forward pass (continued prefill between chunks)
  AttentionPlan attention;
  int num_threads = 0;        // 0 = default_num_threads()
};

struct PrefillOptions {
  bool all_logits = false;  // logits of every position, else only of the last one
  int64_t chunk_size = 0;   // rows per forward pass for this call, at most the session's; 0: the session's
  // Called after each chunk with (tokens done, tokens total).
  std::function<void(int64_t, int64_t)> on_progress;
};

// What the generation loop and the CLI need of a session, whatever device runs it (Session on the CPU,
// CudaSession in cuda_session.h on the GPU).
class InferenceSession {
 public:
  virtual ~InferenceSession() = default;
  virtual std::vector<float> prefill(std::span<const int32_t> ids, const PrefillOptions& options = {}) = 0;
  virtual std::vector<float> decode(int32_t id) = 0;
  virtual void set_attention(AttentionPlan plan) = 0;
  virtual int64_t position() const = 0;
  virtual int64_t context() const = 0;
  virtual uint64_t kv_cache_bytes() const = 0;
  // Forgets the cached tokens (the cache memory is kept): the next prefill starts at position 0.
  virtual void reset() = 0;
  // Highest device memory in use seen by the session, 0 for a CPU session.
  virtual uint64_t peak_device_bytes() const { return 0; }
  // Per layer, the anchor gap of the last prefill (AttentionPlan::report_anchor_gap or the adaptive policy);
  // empty when the session does not measure it.
  virtual std::vector<LayerAnchorGap> anchor_gaps() const { return {}; }
};

class PagedKvCache;
class CpuForward;

class Session : public InferenceSession {
 public:
  Session(std::shared_ptr<const Model> model, SessionOptions options);
  ~Session() override;

  // Appends tokens to the context and returns logits: (n, vocab) row-major with all_logits, else (vocab)
  // for the last token. Throws dattn::Error (before computing anything) when the tokens do not fit the
  // context or an id is outside the vocabulary.
  std::vector<float> prefill(std::span<const int32_t> ids, const PrefillOptions& options = {}) override;
  // Appends one token with dense attention over the whole cache; returns its logits (vocab).
  std::vector<float> decode(int32_t id) override;

  // Changes the prefill attention for the following calls (the cache is kept).
  void set_attention(AttentionPlan plan) override;

  int64_t position() const override { return position_; }  // tokens in the cache
  int64_t context() const override { return options_.context; }
  void reset() override { position_ = 0; }
  const Model& model() const { return *model_; }
  uint64_t kv_cache_bytes() const override;
  std::vector<LayerAnchorGap> anchor_gaps() const override { return gaps_; }

 private:
  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  int64_t position_ = 0;
  // one block of `context` tokens per layer; left uninitialised so untouched context costs no memory
  std::unique_ptr<PagedKvCache> cache_;
  std::unique_ptr<CpuForward> forward_;
  std::vector<LayerAnchorGap> gaps_;  // of the current / last prefill

  // Runs the layers over ids at positions [position_, position_ + n); writes the final-norm hidden states of
  // rows [first_logit_row, n) and their logits into `logits`.
  void forward_chunk(std::span<const int32_t> ids, bool decode_step, int64_t first_logit_row, float* logits);
  void check_ids(std::span<const int32_t> ids) const;
};

}  // namespace dattn::model
