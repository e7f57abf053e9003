// Quantized-block kernels in C: the integer dot products need AVX-512 VNNI (vpdpbusd), which Swift
// cannot express. Block layouts are GGUF's (ggml's) exactly, so weights are used in place from a
// memory-mapped file:
//   Q4_0  18 bytes / 32 weights: f16 d, 16 bytes of nibbles;      w = d * (q - 8)
//   Q4_1  20 bytes / 32 weights: f16 d, f16 m, 16 bytes nibbles;  w = d * q + m
//   Q8_0  34 bytes / 32 weights: f16 d, 32 int8;                  w = d * q
// In a 4-bit block, weight j (j < 16) is the low nibble of byte j and weight j+16 its high nibble.
//
// Activations are quantized the way llama.cpp quantizes them (q8_0 / q8_1): per 32 values,
// d = max|x| / 127 rounded to f16, q = round(x * 127 / max|x|), s = f16(d * Σq). They are stored
// as separate arrays so that consecutive blocks' int8 values are contiguous for 512-bit loads.
#ifndef KILN_QUANT_H
#define KILN_QUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KILN_QK = 32 };

typedef enum {
    KILN_QTYPE_Q4_0 = 2,
    KILN_QTYPE_Q4_1 = 3,
    KILN_QTYPE_Q8_0 = 8,
} KilnQuantType;

/// Quantized activations for `blockCount` blocks of 32 values.
typedef struct {
    int8_t *values;  // [blockCount * 32]
    float *scales;   // [blockCount] d, already rounded through f16
    float *sums;     // [blockCount] f16(d * Σq), llama.cpp's q8_1 "s"
    int32_t *integerSums;  // [blockCount] Σq exactly
} KilnQ8Activations;

/// Bytes of one block of `type`; 0 for an unknown type.
size_t kiln_quant_block_bytes(int type);

/// Quantizes `blockCount * 32` floats into `out` (row `row` of a batch: offsets `row * blockCount`).
void kiln_quantize_activations(const float *x, int64_t blockCount, KilnQ8Activations out, int64_t row);

/// Dot product of one quantized weight row (`blockCount` blocks) with activation row `row`.
float kiln_quant_dot(int type, const void *weights, KilnQ8Activations a, int64_t row, int64_t blockCount);

/// out[t * outStride + r] = dot(weight row r, activation row t) for r in [rowBegin, rowEnd),
/// t in [0, tokenCount). Weight rows are `rowBytes` apart. Weight blocks are unpacked once per
/// group of up to four activation rows (the batched prefill form).
void kiln_quant_matmul(int type, const void *weights, size_t rowBytes, int64_t rowBegin, int64_t rowEnd,
                       int64_t blockCount, KilnQ8Activations a, int64_t tokenCount, float *out,
                       int64_t outStride);

/// Dequantizes `blockCount` blocks into 32 * blockCount floats.
void kiln_dequantize(int type, const void *blocks, int64_t blockCount, float *out);

void kiln_f16_to_f32(const uint16_t *in, int64_t count, float *out);
void kiln_bf16_to_f32(const uint16_t *in, int64_t count, float *out);
/// Round-to-nearest-even f32 -> f16 bits (as ggml's GGML_FP32_TO_FP16 on F16C hardware).
uint16_t kiln_f32_to_f16(float value);
float kiln_f16_to_f32_scalar(uint16_t bits);

/// 1 when the kernels were compiled with AVX-512 VNNI, 0 for the portable C path.
int kiln_quant_uses_vnni(void);

/// Streaming read of `count` floats (a memory-bandwidth probe): returns their sum.
float kiln_stream_sum(const float *x, int64_t count);

#ifdef __cplusplus
}
#endif
#endif
