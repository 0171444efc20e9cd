// The device helpers every generated flow source starts with (embedded into the code generator
// by the build as kDeviceHelpersSource: see CMakeLists.txt, "CUDA sources the flow code generator
// embeds"). Compiled by NVRTC only, inside the generated source.
// Unused helpers and page pointers are normal in generated code.
#pragma nv_diag_suppress 177
#pragma nv_diag_suppress 550
#define VX_OFFSETOF(T, m) __INTADDR__(&((T*)0)->m)
__device__ __forceinline__ float vx_nan() { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ float vx_inf() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ float vx_bf2f(vx_bf16 b) {
  return __uint_as_float(((unsigned)b) << 16);
}
// f32 -> bf16, round to nearest even; NaN stays NaN.
__device__ __forceinline__ vx_bf16 vx_f2bf(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (vx_bf16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (vx_bf16)(u >> 16);
}
__device__ __forceinline__ float vx_max(float a, float b) {
  return (a != a || b != b) ? vx_nan() : fmaxf(a, b);
}
__device__ __forceinline__ float vx_min(float a, float b) {
  return (a != a || b != b) ? vx_nan() : fminf(a, b);
}
__device__ __forceinline__ float vx_relu(float x) { return x != x ? x : fmaxf(x, 0.0f); }
__device__ __forceinline__ float vx_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float vx_silu(float x) { return x * vx_sigmoid(x); }
__device__ __forceinline__ float vx_mod(float a, float b) {
  float r = fmodf(a, b);
  if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
  return r;
}
// Read-only loads of 8, 4 or 2 bf16 (16, 8 or 4 bytes, aligned) as f32.
__device__ __forceinline__ void vx_unpack2(unsigned w, float* out) {
  out[0] = __uint_as_float(w << 16);
  out[1] = __uint_as_float(w & 0xffff0000u);
}
__device__ __forceinline__ void vx_ld8(float* out, const vx_bf16* p) {
  unsigned a, b, c, d;
  asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "l"(p));
  vx_unpack2(a, out); vx_unpack2(b, out + 2); vx_unpack2(c, out + 4); vx_unpack2(d, out + 6);
}
__device__ __forceinline__ void vx_ld4(float* out, const vx_bf16* p) {
  unsigned a, b;
  asm("ld.global.nc.v2.u32 {%0, %1}, [%2];" : "=r"(a), "=r"(b) : "l"(p));
  vx_unpack2(a, out); vx_unpack2(b, out + 2);
}
__device__ __forceinline__ void vx_ld2(float* out, const vx_bf16* p) {
  unsigned a;
  asm("ld.global.nc.u32 %0, [%1];" : "=r"(a) : "l"(p));
  vx_unpack2(a, out);
}
__device__ __forceinline__ float vx_ld1(const vx_bf16* p) { return vx_bf2f(__ldg(p)); }
// int8 Fields (flow/field_storage.h has the host's copy of this arithmetic). The exponent of a
// block's power-of-two scale: its largest magnitude m lands in (63.5, 127] units.
__device__ __forceinline__ int vx_int8_scale_exponent(float m) {
  if (!(m > 0.0f)) return 0;
  if (m == vx_inf()) return 104;
  int e;
  frexpf(m, &e);
  e -= 7;
  if (ldexpf(m, -e) > 127.0f) ++e;
  return min(max(e, -126), 104);
}
// The stored byte of x (x times 2^-e): round to nearest even, clamped to [-127, 127], plus 128.
__device__ __forceinline__ unsigned vx_int8_code(float x_scaled) {
  return x_scaled != x_scaled ? 128u : (unsigned)((int)fminf(fmaxf(rintf(x_scaled), -127.0f), 127.0f) + 128);
}
// Decode: the byte u placed under the f32 pattern of 2^23 is 2^23 + u, so
// fma(that, s, -(2^23 + 128) * s) = (u - 128) * s, exact: two instructions a value. c is
// (2^23 + 128) * s of the block.
__device__ __forceinline__ float vx_int8_value(unsigned w, unsigned selector, float s, float c) {
  return fmaf(__uint_as_float(__byte_perm(w, 0x4b000000u, selector)), s, -c);
}
// Read-only loads of 8, 4, 2 or 1 stored bytes (aligned) as f32.
__device__ __forceinline__ void vx_unpack_int8x4(unsigned w, float s, float c, float* out) {
  out[0] = vx_int8_value(w, 0x7650u, s, c);
  out[1] = vx_int8_value(w, 0x7651u, s, c);
  out[2] = vx_int8_value(w, 0x7652u, s, c);
  out[3] = vx_int8_value(w, 0x7653u, s, c);
}
__device__ __forceinline__ void vx_ld8_int8(float* out, const unsigned char* p, float s, float c) {
  unsigned a, b;
  asm("ld.global.nc.v2.u32 {%0, %1}, [%2];" : "=r"(a), "=r"(b) : "l"(p));
  vx_unpack_int8x4(a, s, c, out); vx_unpack_int8x4(b, s, c, out + 4);
}
__device__ __forceinline__ void vx_ld4_int8(float* out, const unsigned char* p, float s, float c) {
  unsigned a;
  asm("ld.global.nc.u32 %0, [%1];" : "=r"(a) : "l"(p));
  vx_unpack_int8x4(a, s, c, out);
}
__device__ __forceinline__ void vx_ld2_int8(float* out, const unsigned char* p, float s, float c) {
  unsigned short a;
  asm("ld.global.nc.u16 %0, [%1];" : "=h"(a) : "l"(p));
  out[0] = vx_int8_value(a, 0x7650u, s, c);
  out[1] = vx_int8_value(a, 0x7651u, s, c);
}
__device__ __forceinline__ float vx_ld1_int8(const unsigned char* p, float s, float c) {
  return vx_int8_value(__ldg(p), 0x7650u, s, c);
}
// Reductions over a group of L adjacent lanes (L a power of two, the group aligned in its warp;
// mask: the group's lanes). Butterfly order, so every lane of the group gets the same bits.
template <int L>
__device__ __forceinline__ float vx_lanes_sum(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
  return v;
}
template <int L>
__device__ __forceinline__ float vx_lanes_max(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v = vx_max(v, __shfl_xor_sync(mask, v, o));
  return v;
}
template <int L>
__device__ __forceinline__ float vx_lanes_min(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v = vx_min(v, __shfl_xor_sync(mask, v, o));
  return v;
}
// Block-wide reductions (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float vx_block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? red[threadIdx.x & 31] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float vx_block_max(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v = vx_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? red[threadIdx.x & 31] : -vx_inf();
  for (int o = 16; o > 0; o >>= 1) v = vx_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float vx_block_min(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v = vx_min(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? red[threadIdx.x & 31] : vx_inf();
  for (int o = 16; o > 0; o >>= 1) v = vx_min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
