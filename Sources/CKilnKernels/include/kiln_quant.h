// Quantized-block kernels in C: the integer dot products need AVX-512 VNNI (vpdpbusd), which Swift
// cannot express. Block layouts are GGUF's (ggml's) exactly, so weights are used in place from a
// memory-mapped file. One table (`kiln_quant_type_info`, quant_types.c) describes every type:
// its block geometry, the activation format its products read, and whether Kiln has its kernels.
//
// Legacy types, 32 weights a block (weight j < 16 is the low nibble of byte j, j+16 its high one):
//   Q4_0  18 bytes: f16 d, 16 bytes of nibbles;                      w = d * (q - 8)
//   Q4_1  20 bytes: f16 d, f16 m, 16 bytes nibbles;                  w = d * q + m
//   Q5_0  22 bytes: f16 d, 32 high bits, 16 bytes nibbles;           w = d * (q - 16)
//   Q5_1  24 bytes: f16 d, f16 m, 32 high bits, 16 bytes nibbles;    w = d * q + m
//   Q8_0  34 bytes: f16 d, 32 int8;                                  w = d * q
//   IQ4_NL 18 bytes: f16 d, 16 bytes nibbles;                        w = d * table[q]
// K-quants, 256 weights a super-block: Q2_K (84 bytes), Q3_K (110), Q4_K (144), Q5_K (176),
// Q6_K (210), IQ4_XS (136), with sub-block scales as ggml defines them.
//
// Activations are quantized the way llama.cpp quantizes them for each weight type: q8_0 / q8_1
// per 32 values (d = max|x| / 127 rounded to f16, q = round(x / d), s = f16(d * Σq)) for the
// legacy types, q8_K per 256 values (d = max / -127 as f32, with sums of 16) for the K-quants.
// They are stored as separate arrays so that consecutive blocks' int8 values are contiguous.
#ifndef KILN_QUANT_H
#define KILN_QUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KILN_QK = 32, KILN_QK_K = 256 };

typedef enum {
    KILN_QTYPE_F32 = 0,
    KILN_QTYPE_F16 = 1,
    KILN_QTYPE_Q4_0 = 2,
    KILN_QTYPE_Q4_1 = 3,
    KILN_QTYPE_Q5_0 = 6,
    KILN_QTYPE_Q5_1 = 7,
    KILN_QTYPE_Q8_0 = 8,
    KILN_QTYPE_Q8_1 = 9,
    KILN_QTYPE_Q2_K = 10,
    KILN_QTYPE_Q3_K = 11,
    KILN_QTYPE_Q4_K = 12,
    KILN_QTYPE_Q5_K = 13,
    KILN_QTYPE_Q6_K = 14,
    KILN_QTYPE_Q8_K = 15,
    KILN_QTYPE_IQ4_NL = 20,
    KILN_QTYPE_IQ4_XS = 23,
    KILN_QTYPE_BF16 = 30,
} KilnQuantType;

/// Which quantized activations a weight type's products read.
typedef enum {
    KILN_ACTIVATION_NONE = 0,  // no quantized product (plain f32, integer and index types)
    KILN_ACTIVATION_Q8_0 = 1,  // 32-value blocks (q8_0 values and scale; q8_1's sums)
    KILN_ACTIVATION_Q8_K = 2,  // 256-value super-blocks
    KILN_ACTIVATION_F16 = 3,   // the activations rounded to f16 (F16 weights)
    KILN_ACTIVATION_BF16 = 4,  // the activations rounded to bf16 (BF16 weights)
} KilnActivationFormat;

/// One row of the type table.
typedef struct {
    int32_t type;           // ggml's number
    const char *name;       // ggml's name: "Q4_K", "F16", …
    int32_t blockElements;  // 1 for plain types, 32 or 256 for block types
    int32_t blockBytes;
    int32_t activation;     // KilnActivationFormat
    int32_t hasKernels;     // 1 when Kiln can dequantize this type and multiply by it
    int32_t hasQuantizer;   // 1 when Kiln can quantize floats into this type (kiln_quantize_rows)
    int32_t exactBatchTokens;  // the largest batch in which every token's products keep their lone bits
} KilnQuantTypeInfo;

/// The table row of ggml type `type`, or NULL for a type number Kiln does not know.
const KilnQuantTypeInfo *kiln_quant_type_info(int type);

/// Bytes of one block of `type`; 0 for an unknown type.
size_t kiln_quant_block_bytes(int type);

/// Quantized activations for `blockCount` blocks of 32 values (and, when `kValues` is set,
/// `blockCount / 8` super-blocks of 256) per row.
typedef struct {
    int8_t *values;        // [rows * blockCount * 32] q8_0 values
    float *scales;         // [rows * blockCount] d, already rounded through f16
    float *sums;           // [rows * blockCount] f16(d * Σq), llama.cpp's q8_1 "s"
    int32_t *integerSums;  // [rows * blockCount] Σq exactly
    int8_t *kValues;       // [rows * blockCount * 32] q8_K values, or NULL
    float *kScales;        // [rows * blockCount / 8] q8_K d
    int16_t *kSums;        // [rows * blockCount * 2] sums of 16 q8_K values
    uint16_t *halfValues;   // [rows * blockCount * 32] f16 bits, or NULL
    uint16_t *bfloatValues; // [rows * blockCount * 32] bf16 bits, or NULL
} KilnQ8Activations;

/// Quantizes `blockCount * 32` floats into `out` (row `row` of a batch: offsets `row * blockCount`),
/// into every format `out` has buffers for.
void kiln_quantize_activations(const float *x, int64_t blockCount, KilnQ8Activations out, int64_t row);

/// Dot product of one quantized weight row (`blockCount` blocks of 32 weights) with activation row
/// `row`, in llama.cpp's CPU summation order for `type`.
float kiln_quant_dot(int type, const void *weights, KilnQ8Activations a, int64_t row, int64_t blockCount);

/// out[t * outStride + r] = dot(weight row r, activation row t) for r in [rowBegin, rowEnd),
/// t in [0, tokenCount). Weight rows are `rowBytes` apart; `blockCount` counts blocks of 32.
/// `matrixRows` is the whole matrix's row count (llama.cpp picks F16/BF16 batches' order by it).
void kiln_quant_matmul(int type, const void *weights, size_t rowBytes, int64_t rowBegin, int64_t rowEnd,
                       int64_t matrixRows, int64_t blockCount, KilnQ8Activations a, int64_t tokenCount,
                       float *out, int64_t outStride);

/// Quantizes `rows` rows of `columns` floats into `type`'s blocks with the arithmetic of ggml's
/// reference quantizers (what llama-quantize does without an importance matrix), byte for byte.
/// Returns the bytes written, or 0 when the type has no quantizer or `columns` is not a multiple
/// of its block.
size_t kiln_quantize_rows(int type, const float *x, void *out, int64_t rows, int64_t columns);

/// Index of the first NaN or infinity among `count` floats, or -1.
int64_t kiln_first_nonfinite(const float *x, int64_t count);

/// Dequantizes `elementCount` weights (whole blocks) of `type` into floats.
void kiln_dequantize(int type, const void *blocks, int64_t elementCount, float *out);

void kiln_f16_to_f32(const uint16_t *in, int64_t count, float *out);
void kiln_bf16_to_f32(const uint16_t *in, int64_t count, float *out);
/// Round-to-nearest-even f32 -> f16 bits (as ggml's GGML_FP32_TO_FP16 on F16C hardware).
uint16_t kiln_f32_to_f16(float value);
float kiln_f16_to_f32_scalar(uint16_t bits);
/// f32 -> f16 bits as ggml's software conversion: round to nearest even, NaN -> 0x7E00 (signed).
uint16_t kiln_f32_to_f16_exact(float value);

/// 1 when the kernels were compiled with AVX-512 VNNI, 0 for the portable C path.
int kiln_quant_uses_vnni(void);

/// A compute-bound probe of the integer dot-product peak: `iterations` rounds of 8 independent
/// vpdpbusd (VNNI) or int16 multiply-add chains; returns the int8 operations done (2 per
/// multiply-add), 0 without AVX-512.
double kiln_int8_dot_peak_probe(int64_t iterations);

/// Streaming read of `count` floats (a memory-bandwidth probe): returns their sum.
float kiln_stream_sum(const float *x, int64_t count);

#ifdef __cplusplus
}
#endif
#endif
