// How a Field's values are stored between summarize and score. A bf16 Field keeps each value in
// bf16. An int8 Field (Field(..., dtype="int8")) keeps, per (page, KV head, layer), one
// power-of-two scale s = 2^e and each value x as the integer b = round(x / s) in [-127, 127]
// (stored as the byte b + 128); e puts the block's largest magnitude m in (63.5, 127] units, so
// every value is kept to within s / 2 < m / 127. The CPU executor stores the values b * s this
// gives, and the CUDA code generator emits the same arithmetic (every step exact in f32), so
// both backends score the same numbers. A block holding a NaN becomes all NaN.
#pragma once

#include <cstdint>

namespace vortex::flow {

// The scale's exponent e for a block whose largest magnitude is max_abs: floor(log2(max_abs))
// - 6, plus 1 when max_abs is above 127 units of that, clamped to [-126, 104] (so s and
// (2^23 + 128) * s are normal floats); 0 for a block of zeros.
int int8_scale_exponent(float max_abs);

// The largest magnitude of x[0..n), NaN ignored (0 if none).
float block_max_abs(const float* x, int64_t n);

// The stored integer of x in a block of scale 2^e: round to nearest even of x * 2^-e, clamped
// to [-127, 127] (infinities too); NaN gives 0 (its block's scale is NaN).
int int8_code(float x, int e);

// Rounds x[0..n) in place to what an int8 Field block stores: int8_code(x, e) * 2^e, or all NaN
// when a value is NaN.
void round_int8_block(float* x, int64_t n);

}  // namespace vortex::flow
