#include "kernels/cpu/rope.h"

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/thread_pool.h"

namespace vortex::cpu {
namespace {

// Single float32 operations, each rounded once as in PyTorch. Going through double and rounding
// back gives exactly the IEEE float result for + - * / (double has more than 2·24+2 bits), and
// the conversions stop the compiler from fusing a multiply and an add into one FMA, which
// PyTorch's separate elementwise ops do not do.
float f32_add(float a, float b) { return static_cast<float>(static_cast<double>(a) + b); }
float f32_sub(float a, float b) { return static_cast<float>(static_cast<double>(a) - b); }
float f32_mul(float a, float b) { return static_cast<float>(static_cast<double>(a) * b); }
float f32_div(float a, float b) { return static_cast<float>(static_cast<double>(a) / b); }
// Python scalars meet float32 tensors as float32.
float f32(double v) { return static_cast<float>(v); }

// transformers' _compute_default_rope_parameters:
//   1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
// where `1.0 / t` is evaluated by torch as t.reciprocal() * 1.0.
std::vector<float> default_inv_freq(int32_t head_dim, double theta) {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int32_t i = 0; i < head_dim / 2; ++i) {
    const float exponent = f32_div(static_cast<float>(2 * i), static_cast<float>(head_dim));
    // pow rounded once to float (PyTorch's vectorised powf is within 1 ulp of this).
    const float power = f32(std::pow(static_cast<double>(f32(theta)), exponent));
    inv[static_cast<size_t>(i)] = f32_mul(f32_div(1.0f, power), 1.0f);
  }
  return inv;
}

// transformers' _compute_llama3_parameters, operation by operation; `s / t` with a Python
// scalar s is t.reciprocal() * s in torch.
void apply_llama3(std::vector<float>& inv_freq, const RopeParams& p) {
  const double old_context_len = p.original_max_position_embeddings;
  const float low_freq_wavelen = f32(old_context_len / p.low_freq_factor);
  const float high_freq_wavelen = f32(old_context_len / p.high_freq_factor);
  const float factor = f32(p.factor);
  const float band = f32(p.high_freq_factor - p.low_freq_factor);
  for (float& inv : inv_freq) {
    const float wavelen = f32_mul(f32_div(1.0f, inv), f32(2 * std::numbers::pi));
    float scaled = wavelen > low_freq_wavelen ? f32_div(inv, factor) : inv;
    const float smooth = f32_div(
        f32_sub(f32_mul(f32_div(1.0f, wavelen), f32(old_context_len)), f32(p.low_freq_factor)),
        band);
    const float smoothed =
        f32_add(f32_div(f32_mul(f32_sub(1.0f, smooth), scaled), factor), f32_mul(smooth, scaled));
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    inv = medium ? smoothed : scaled;
  }
}

}  // namespace

std::vector<float> rope_inv_freq(int32_t head_dim, const RopeParams& p) {
  if (head_dim <= 0 || head_dim % 2 != 0)
    fail("rope: head_dim must be a positive even number, got ", head_dim);
  if (!(p.theta > 0)) fail("rope: rope_theta must be positive, got ", p.theta);
  if (p.type == "default") return default_inv_freq(head_dim, p.theta);
  if (p.type == "linear") {
    if (!(p.factor > 0)) fail("rope: linear scaling factor must be positive, got ", p.factor);
    std::vector<float> inv = default_inv_freq(head_dim, p.theta);
    for (float& f : inv) f = f32_div(f, f32(p.factor));
    return inv;
  }
  if (p.type == "llama3") {
    if (!(p.factor > 0)) fail("rope: llama3 scaling factor must be positive, got ", p.factor);
    if (!(p.low_freq_factor > 0) || !(p.high_freq_factor > p.low_freq_factor))
      fail("rope: llama3 scaling needs 0 < low_freq_factor < high_freq_factor, got ",
           p.low_freq_factor, " and ", p.high_freq_factor);
    if (p.original_max_position_embeddings <= 0)
      fail("rope: llama3 original_max_position_embeddings must be positive, got ",
           p.original_max_position_embeddings);
    std::vector<float> inv = default_inv_freq(head_dim, p.theta);
    apply_llama3(inv, p);
    return inv;
  }
  fail("rope: unsupported rope_scaling type '", p.type,
       "' (supported: default, linear, llama3)");
}

void apply_rope(float* x, int64_t T, int32_t H, int32_t D, const int32_t* positions,
                const std::vector<float>& inv_freq) {
  const int32_t half = D / 2;
  if (D <= 0 || D % 2 != 0 || static_cast<int64_t>(inv_freq.size()) != half)
    fail("apply_rope: head_dim ", D, " needs ", half, " inverse frequencies, got ",
         inv_freq.size());
  const int64_t grain = std::max<int64_t>(1, 8192 / (static_cast<int64_t>(H) * D));
  ThreadPool::global().parallel_for(T, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> cos_a(static_cast<size_t>(half)), sin_a(static_cast<size_t>(half));
    for (int64_t t = begin; t < end; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int32_t i = 0; i < half; ++i) {
        const float angle = f32_mul(pos, inv_freq[static_cast<size_t>(i)]);
        cos_a[static_cast<size_t>(i)] = std::cos(angle);
        sin_a[static_cast<size_t>(i)] = std::sin(angle);
      }
      for (int32_t h = 0; h < H; ++h) {
        float* lo = x + (t * H + h) * D;
        float* hi = lo + half;
        for (int32_t i = 0; i < half; ++i) {
          const float a = lo[i], b = hi[i];
          const float c = cos_a[static_cast<size_t>(i)], s = sin_a[static_cast<size_t>(i)];
          // rotate_half(x) = cat(-x2, x1): x·cos + rotate_half(x)·sin.
          lo[i] = f32_add(f32_mul(a, c), f32_mul(-b, s));
          hi[i] = f32_add(f32_mul(b, c), f32_mul(a, s));
        }
      }
    }
  });
}

}  // namespace vortex::cpu
