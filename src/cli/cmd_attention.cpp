// `dattn attention`: runs the operator on .npy inputs and writes the output (and LSE) as .npy.
#include <fmt/format.h>

#include "attention_flags.h"
#include "commands.h"
#include "flag_values.h"
#include "dattn/attn/backends.h"
#include "dattn/core/error.h"
#include "dattn/core/output_files.h"
#include "dattn/delta/delta_attention.h"
#include "tensor_io.h"

namespace dattn::cli {
namespace {

struct AttentionOptions {
  std::string q, k, v, out, lse;
  std::string mode = "delta", dtype = "fp32", backend = "cpu";
  SparsityFlags sparsity;
  int64_t tail_min = -1;
  double scale = 0.0;
  int threads = 0;
};

void run_attention(const AttentionOptions& o) {
  AttentionParams params = o.sparsity.params(parse_mode(o.sparsity.modes(o.mode)));
  params.tail_min = o.tail_min;
  params.scale = o.scale;
  params.num_threads = o.threads;
  params.backend = parse_backend(o.backend);
  validate_attention_params(params);
  // every output is checked before any work and written only when all of them are ready
  OutputFiles files;
  files.add("--out", o.out);
  if (!o.lse.empty()) files.add("--lse", o.lse);
  DType dtype = parse_dtype(o.dtype);
  Device device = resolve_backend(params.backend, Device::cpu) == Backend::cuda ? Device::cuda : Device::cpu;
  DATTN_CHECK(device == Device::cpu || cuda::available(), "--backend cuda: no CUDA device is available");

  Tensor q = load_attention_npy(o.q, "q", dtype), k = load_attention_npy(o.k, "k", dtype),
         v = load_attention_npy(o.v, "v", dtype);
  if (device == Device::cuda) {
    q = Tensor::copy_of(q, dtype, device);
    k = Tensor::copy_of(k, dtype, device);
    v = Tensor::copy_of(v, dtype, device);
  }
  const auto& qs = q.view().shape;
  Tensor out(qs, device == Device::cuda ? dtype : DType::f32, device);
  Tensor lse({qs[0], qs[2], qs[1], 1}, DType::f32, device);
  delta_attention_lse(q, k, v, out, lse, params);
  q = k = v = Tensor();  // freed before the output is copied for writing: the peak stays at inputs + output
  stage_f32_npy(files, o.out, out, 4);
  if (!o.lse.empty()) stage_f32_npy(files, o.lse, lse, 3);
  files.commit();
}

}  // namespace

void add_attention_command(CLI::App& app) {
  auto options = std::make_shared<AttentionOptions>();
  CLI::App* cmd = app.add_subcommand("attention", "Run Delta Attention on .npy tensors (batch, seq, heads, head_dim)");
  cmd->add_option("--q", options->q, "queries .npy (float32/float16)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--k", options->k, "keys .npy")->required()->check(CLI::ExistingFile);
  cmd->add_option("--v", options->v, "values .npy")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", options->out, "output .npy (float32, Q's shape)")->required();
  cmd->add_option("--lse", options->lse, "log-sum-exp .npy (float32, batch x heads x n_q)");
  cmd->add_option("--mode", options->mode, "dense|sparse|recompute|delta")->capture_default_str();
  add_sparsity_flags(*cmd, options->sparsity);
  add_tail_min_flag(*cmd, options->tail_min);
  cmd->add_option("--scale", options->scale, "softmax scale (default 1/sqrt(head_dim))")
      ->check(positive_number(kMaxAttentionScale));
  cmd->add_option("--dtype", options->dtype, "compute input dtype fp32|bf16|fp16")->capture_default_str();
  cmd->add_option("--backend", options->backend, "reference|cpu|cuda")->capture_default_str();
  add_threads_flag(*cmd, options->threads);
  cmd->callback([options] { run_attention(*options); });
}

}  // namespace dattn::cli
