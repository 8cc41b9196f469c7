// llama.cpp GGUF files as models: the config from the GGUF metadata and the weights dequantized into a
// Checkpoint with Hugging Face tensor names, so the CPU and CUDA runtimes load them like safetensors.
#pragma once
#include <filesystem>

#include "dattn/core/dtype.h"
#include "dattn/io/gguf.h"
#include "dattn/model/config.h"
#include "dattn/model/safetensors.h"

namespace dattn::model {

// Architectures llama (also Mistral, which llama.cpp writes as llama), qwen2 and qwen3: sizes, GQA, head
// dim, norm eps, rope base and scaling (linear, yarn, and llama3's per-frequency factors from the
// rope_freqs tensor), tied output (no output.weight), biases, bos/eos. Throws dattn::Error naming the key.
// load_model_config(path) calls this for a GGUF file.
ModelConfig gguf_model_config(const io::GgufFile& file);

// Every weight dequantized to `dtype` (f32 for the CPU session, bf16 for the CUDA one) under its Hugging
// Face name, with the Q/K row permutation that llama.cpp's converter applies to llama weights undone.
// Unknown tensor names are an error (they would change the computation).
Checkpoint gguf_checkpoint(const io::GgufFile& file, const ModelConfig& config, DType dtype);

// A model path is a GGUF file (weights dequantized to gguf_dtype) or a Hugging Face model directory.
Checkpoint open_any_checkpoint(const std::filesystem::path& path, DType gguf_dtype);

}  // namespace dattn::model
