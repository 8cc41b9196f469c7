#include "cuda_forward.h"

#include <algorithm>

#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/delta/delta_attention.h"
#include "decode_attention.h"
#include "model_kernels.h"

namespace dattn::model {

using namespace cuda_detail;

namespace {
// Rows of logits computed per GEMM: bounds the buffer at this many * vocab floats.
constexpr int64_t kLogitBlockRows = 64;
}  // namespace

std::unique_ptr<ForwardBackend> make_cuda_forward(const ModelConfig& config, const Checkpoint& weights,
                                                  const CudaForwardOptions& options) {
  DATTN_CHECK(cuda::available(), "device cuda: no CUDA device is present");
  return std::make_unique<CudaForward>(config, weights, options);
}

uint64_t cuda_kv_bytes_per_token(const ModelConfig& config) {
  return 2ull * uint64_t(config.num_layers) * uint64_t(config.num_kv_heads) * uint64_t(padded_head_dim(config.head_dim)) *
         2ull;
}

namespace cuda_detail {

Stream::Stream() { check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }
Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}

CudaForward::CudaForward(const ModelConfig& config, const Checkpoint& checkpoint, const CudaForwardOptions& options)
    : config_(config), options_(options) {
  const ModelConfig& c = config_;
  const CudaForwardOptions& o = options_;
  DATTN_CHECK(o.num_blocks >= 1 && o.block_tokens >= 1 && o.max_rows >= 1 && o.max_sequences >= 1 &&
                  o.max_context >= 1,
              "cuda forward: {} blocks of {} tokens, {} rows, {} sequences, context {} (each must be >= 1)",
              o.num_blocks, o.block_tokens, o.max_rows, o.max_sequences, o.max_context);
  padded_head_dim_ = padded_head_dim(c.head_dim);
  const int64_t dp = padded_head_dim_, hq = c.num_heads, hkv = c.num_kv_heads;
  weights_ = upload_weights(c, checkpoint);
  const std::vector<float> inv_freq = rope_inverse_frequencies(c.rope, c.head_dim);
  inv_freq_ = DeviceBuffer(inv_freq.size() * 4, "the rotary frequencies");
  check_cuda(cudaMemcpy(inv_freq_.data(), inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice),
             "uploading the rotary frequencies");

  // allocated up front: a pool that cannot fit fails here, with its size, not mid-prompt
  const uint64_t pool_bytes = uint64_t(c.num_layers) * uint64_t(o.num_blocks) * uint64_t(o.block_tokens) *
                              uint64_t(hkv * dp) * 2ull;
  k_pool_ = DeviceBuffer(pool_bytes, "the K cache");
  v_pool_ = DeviceBuffer(pool_bytes, "the V cache");
  kv_bytes_ = 2 * pool_bytes;

  const int64_t rows = o.max_rows, seqs = o.max_sequences;
  max_blocks_ = (o.max_context + o.block_tokens - 1) / o.block_tokens;
  max_logit_rows_ = std::min(rows, kLogitBlockRows);
  const int64_t hidden = c.hidden_size, qkv_dim = (hq + 2 * hkv) * c.head_dim, inter = c.intermediate_size;
  ids_ = DeviceBuffer(size_t(rows) * 4, "token ids");
  positions_ = DeviceBuffer(size_t(rows) * 4, "positions");
  cache_rows_ = DeviceBuffer(size_t(rows) * 8, "cache rows");
  tables_ = DeviceBuffer(size_t(seqs * max_blocks_) * 4, "block tables");
  lengths_ = DeviceBuffer(size_t(seqs) * 8, "sequence lengths");
  x_ = DeviceBuffer(size_t(rows * hidden) * 4, "the residual stream");
  normed_ = DeviceBuffer(size_t(rows * hidden) * 2, "normed activations");
  qkv_ = DeviceBuffer(size_t(rows * qkv_dim) * 2, "q/k/v projections");
  q_ = DeviceBuffer(size_t(rows * hq * dp) * 2, "queries");
  attn_ = DeviceBuffer(size_t(rows * hq * dp) * 2, "attention output");
  gate_up_ = DeviceBuffer(size_t(rows * 2 * inter) * 2, "gate/up projections");
  act_ = DeviceBuffer(size_t(rows * inter) * 2, "SwiGLU output");
  logit_block_ = DeviceBuffer(size_t(max_logit_rows_ * c.vocab_size) * 4, "logits");
  decode_partials_ =
      DeviceBuffer(size_t(decode_partials_floats(o.max_context, int(hq), int(dp), int(seqs))) * 4,
                   "decode attention partials");
  if (o.num_blocks > 1) {  // one block is always read in place
    gathered_k_ = DeviceBuffer(size_t(o.max_context * hkv * dp) * 2, "gathered keys");
    gathered_v_ = DeviceBuffer(size_t(o.max_context * hkv * dp) * 2, "gathered values");
  }
  for (const DeviceBuffer* b : {&ids_, &positions_, &cache_rows_, &tables_, &lengths_, &x_, &normed_, &qkv_, &q_,
                                &attn_, &gate_up_, &act_, &logit_block_, &decode_partials_, &gathered_k_,
                                &gathered_v_})
    workspace_bytes_ += b->bytes();
  sample_memory();
}

uint16_t* CudaForward::layer_pool(const DeviceBuffer& pool, int64_t layer) const {
  return pool.as<uint16_t>() +
         layer * options_.num_blocks * options_.block_tokens * config_.num_kv_heads * padded_head_dim_;
}

void CudaForward::synchronize() { check_cuda(cudaStreamSynchronize(stream_.get()), "the forward pass"); }

void CudaForward::embed(const ForwardBatch& batch) {
  const int64_t rows = batch.rows(), n_seq = int64_t(batch.sequences.size()), bt = options_.block_tokens;
  DATTN_CHECK(rows >= 1 && rows <= options_.max_rows, "forward pass: {} rows, the workspace holds {}", rows,
              options_.max_rows);
  DATTN_CHECK(n_seq <= options_.max_sequences, "forward pass: {} sequences, at most {}", n_seq,
              options_.max_sequences);
  std::vector<int32_t> positions(static_cast<size_t>(rows)), tables(static_cast<size_t>(n_seq * max_blocks_), 0);
  std::vector<int64_t> cache_rows(static_cast<size_t>(rows)), lengths(static_cast<size_t>(n_seq));
  decode_sequences_ = longest_decode_ = 0;
  for (int64_t i = 0; i < n_seq; ++i) {
    const SequenceRows& s = batch.sequences[size_t(i)];
    const int64_t end = s.position + s.rows;
    DATTN_CHECK(end <= int64_t(s.block_table.size()) * bt && end <= options_.max_context,
                "forward pass: positions up to {} do not fit {} blocks of {} tokens (context {})", end,
                s.block_table.size(), bt, options_.max_context);
    if (s.decode) {  // the decode kernel reads the first sequences' queries as one (n, h_q, d) block
      DATTN_CHECK(i == decode_sequences_ && s.first_row == i && s.rows == 1,
                  "forward pass: decode rows must lead the batch, one per sequence");
      ++decode_sequences_;
      longest_decode_ = std::max(longest_decode_, end);
    }
    for (int64_t r = 0; r < s.rows; ++r) {
      const int64_t p = s.position + r;
      positions[size_t(s.first_row + r)] = int32_t(p);
      cache_rows[size_t(s.first_row + r)] = int64_t(s.block_table[size_t(p / bt)]) * bt + p % bt;
    }
    std::copy_n(s.block_table.begin(), std::min<int64_t>(max_blocks_, int64_t(s.block_table.size())),
                tables.begin() + i * max_blocks_);
    lengths[size_t(i)] = end;
  }
  cudaStream_t st = stream_.get();
  profiler_.begin();
  auto upload = [&](const DeviceBuffer& dst, const void* src, size_t bytes, const char* what) {
    check_cuda(cudaMemcpyAsync(dst.data(), src, bytes, cudaMemcpyHostToDevice, st), what);
  };
  upload(ids_, batch.ids.data(), size_t(rows) * 4, "copying token ids");
  upload(positions_, positions.data(), positions.size() * 4, "copying positions");
  upload(cache_rows_, cache_rows.data(), cache_rows.size() * 8, "copying cache rows");
  upload(tables_, tables.data(), tables.size() * 4, "copying block tables");
  upload(lengths_, lengths.data(), lengths.size() * 8, "copying sequence lengths");
  embed_rows(ids_.as<int32_t>(), weights_.embed_tokens, rows, config_.hidden_size, x_.as<float>(), st);
  profiler_.mark("embed");
}

void CudaForward::attention_inputs(int64_t layer, const ForwardBatch& batch) {
  const ModelConfig& c = config_;
  const DeviceLayer& w = weights_.layers[size_t(layer)];
  const int64_t rows = batch.rows(), hidden = c.hidden_size;
  const int64_t d = c.head_dim, hq = c.num_heads, hkv = c.num_kv_heads;
  rms_norm_to_bf16(x_.as<float>(), w.input_norm, rows, hidden, float(c.rms_norm_eps), normed_.as<uint16_t>(),
                   stream_.get());
  profiler_.mark("norms");
  gemm_.linear(normed_.as<uint16_t>(), rows, hidden, w.qkv_weight, (hq + 2 * hkv) * d, qkv_.data(), GemmOut::bf16,
               false);
  profiler_.mark("gemm qkv");
  QkvEpilogueArgs e{};
  e.qkv = qkv_.as<uint16_t>();
  e.bias = w.qkv_bias;
  e.q_norm = w.q_norm;
  e.k_norm = w.k_norm;
  e.norm_eps = float(c.rms_norm_eps);
  e.inv_freq = inv_freq_.as<float>();
  e.rows = rows;
  e.heads_q = int(hq);
  e.heads_kv = int(hkv);
  e.head_dim = int(d);
  e.padded_head_dim = int(padded_head_dim_);
  e.q_out = q_.as<uint16_t>();
  e.k_cache = layer_pool(k_pool_, layer);
  e.v_cache = layer_pool(v_pool_, layer);
  e.positions = positions_.as<int32_t>();
  e.cache_rows = cache_rows_.as<int64_t>();
  qkv_epilogue(e, stream_.get());
  profiler_.mark("rope + kv cache");
}

void CudaForward::attention(int64_t layer, const ForwardBatch& batch) {
  const ModelConfig& c = config_;
  const int64_t dp = padded_head_dim_, hq = c.num_heads, hkv = c.num_kv_heads, bt = options_.block_tokens;
  const int64_t row = hq * dp, kv_row = hkv * dp;
  uint16_t* k_layer = layer_pool(k_pool_, layer);
  uint16_t* v_layer = layer_pool(v_pool_, layer);
  cudaStream_t st = stream_.get();
  // the model's scale (1/sqrt(head_dim), times yarn's attention factor squared): the operator's default
  // would use the padded head_dim, and zero-padded lanes add nothing to q.k
  const double scale = c.attention_scale();
  const bool decode_kernel = hq / hkv <= kDecodeMaxGroup;
  if (decode_sequences_ > 0 && decode_kernel) {
    // decode is dense (spec); the split-KV kernel keeps every SM busy on few query rows
    DecodeAttentionArgs a{q_.as<uint16_t>(), k_layer, v_layer, attn_.as<uint16_t>(), longest_decode_, int(hq),
                          int(hkv), int(dp), float(scale), decode_partials_.as<float>()};
    a.num_seqs = int(decode_sequences_);
    a.block_tables = tables_.as<int32_t>();
    a.seq_lengths = lengths_.as<int64_t>();
    a.max_blocks = int(max_blocks_);
    a.block_tokens = int(bt);
    decode_attention(a, st);
  }
  for (size_t i = 0; i < batch.sequences.size(); ++i) {
    const SequenceRows& s = batch.sequences[i];
    if (s.decode && decode_kernel) continue;
    AttentionParams params = layer_attention(s, layer, scale);
    params.stream = st;
    const int64_t n_kv = s.position + s.rows, blocks = (n_kv + bt - 1) / bt;
    bool consecutive = true;
    for (int64_t b = 1; b < blocks && consecutive; ++b)
      consecutive = s.block_table[size_t(b)] == s.block_table[0] + b;
    const uint16_t *k = k_layer + int64_t(s.block_table[0]) * bt * kv_row,
                   *v = v_layer + int64_t(s.block_table[0]) * bt * kv_row;
    if (!consecutive) {
      const int32_t* table = tables_.as<int32_t>() + int64_t(i) * max_blocks_;
      gather_rows(k_layer, table, n_kv, bt, kv_row, gathered_k_.as<uint16_t>(), st);
      gather_rows(v_layer, table, n_kv, bt, kv_row, gathered_v_.as<uint16_t>(), st);
      k = gathered_k_.as<uint16_t>();
      v = gathered_v_.as<uint16_t>();
    }
    const TensorView q_view{q_.as<uint16_t>() + s.first_row * row, DType::bf16, Device::cuda, {1, s.rows, hq, dp},
                            {s.rows * row, row, dp, 1}};
    const TensorView out_view{attn_.as<uint16_t>() + s.first_row * row, DType::bf16, Device::cuda,
                              {1, s.rows, hq, dp}, {s.rows * row, row, dp, 1}};
    const TensorView k_view{const_cast<uint16_t*>(k), DType::bf16, Device::cuda, {1, n_kv, hkv, dp},
                            {n_kv * kv_row, kv_row, dp, 1}};
    const TensorView v_view{const_cast<uint16_t*>(v), DType::bf16, Device::cuda, {1, n_kv, hkv, dp},
                            {n_kv * kv_row, kv_row, dp, 1}};
    // the anchor gap per layer (reported, or driving the adaptive policy), as CpuForward measures it
    const AttentionPlan& plan = *s.attention;
    const bool measure_gap = s.anchor_gaps && params.mode == AttentionMode::delta &&
                             (plan.report_anchor_gap || plan.adaptive_gap_threshold > 0);
    AnchorGap gap;
    if (measure_gap) params.anchor_gap = &gap;
    delta_attention(q_view, k_view, v_view, out_view, params);
    if (measure_gap) (*s.anchor_gaps)[size_t(layer)].add(gap);
  }
  profiler_.mark("attention");
}

void CudaForward::attention_output(int64_t layer, const ForwardBatch& batch) {
  const DeviceLayer& w = weights_.layers[size_t(layer)];
  const int64_t rows = batch.rows(), hidden = config_.hidden_size;
  gemm_.linear(attn_.as<uint16_t>(), rows, config_.num_heads * padded_head_dim_, w.o_weight, hidden, x_.data(),
               GemmOut::f32, true);
  if (w.o_bias) add_bias_rows(x_.as<float>(), w.o_bias, rows, hidden, stream_.get());
  profiler_.mark("gemm o");
}

void CudaForward::mlp(int64_t layer, const ForwardBatch& batch) {
  const DeviceLayer& w = weights_.layers[size_t(layer)];
  const int64_t rows = batch.rows(), hidden = config_.hidden_size, inter = config_.intermediate_size;
  cudaStream_t st = stream_.get();
  rms_norm_to_bf16(x_.as<float>(), w.post_attention_norm, rows, hidden, float(config_.rms_norm_eps),
                   normed_.as<uint16_t>(), st);
  profiler_.mark("norms");
  gemm_.linear(normed_.as<uint16_t>(), rows, hidden, w.gate_up_weight, 2 * inter, gate_up_.data(), GemmOut::bf16,
               false);
  profiler_.mark("gemm gate/up");
  swiglu(gate_up_.as<uint16_t>(), w.gate_up_bias, rows, inter, act_.as<uint16_t>(), st);
  profiler_.mark("swiglu");
  gemm_.linear(act_.as<uint16_t>(), rows, inter, w.down_weight, hidden, x_.data(), GemmOut::f32, true);
  if (w.down_bias) add_bias_rows(x_.as<float>(), w.down_bias, rows, hidden, st);
  profiler_.mark("gemm down");
}

void CudaForward::logits(const ForwardBatch& batch, float* host_logits) {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, vocab = c.vocab_size;
  cudaStream_t st = stream_.get();
  int64_t filled = 0, written = 0;  // rows normed into the current block, rows copied out
  auto flush = [&] {
    gemm_.linear(normed_.as<uint16_t>(), filled, hidden, weights_.lm_head, vocab, logit_block_.data(), GemmOut::f32,
                 false);
    check_cuda(cudaMemcpyAsync(host_logits + written * vocab, logit_block_.data(), size_t(filled * vocab) * 4,
                               cudaMemcpyDeviceToHost, st),
               "copying logits to the host");
    written += filled;
    filled = 0;
  };
  for (const SequenceRows& s : batch.sequences)
    for (int64_t first = s.logits_from; first < s.rows;) {
      const int64_t n = std::min(max_logit_rows_ - filled, s.rows - first);
      rms_norm_to_bf16(x_.as<float>() + (s.first_row + first) * hidden, weights_.final_norm, n, hidden,
                       float(c.rms_norm_eps), normed_.as<uint16_t>() + filled * hidden, st);
      filled += n;
      first += n;
      if (filled == max_logit_rows_) flush();
    }
  if (filled > 0) flush();
  profiler_.mark("lm head + logits copy");
  synchronize();
  profiler_.collect();  // the pass is complete (a session collects again after its own sync: a no-op)
}

std::vector<std::pair<std::string, double>> CudaForward::stage_profile() {
  synchronize();
  profiler_.collect();
  return profiler_.totals();
}

}  // namespace cuda_detail
}  // namespace dattn::model
