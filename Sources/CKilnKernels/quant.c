// Quantized block kernels (see include/kiln_quant.h for the formats).
//
// The AVX-512 VNNI path handles two blocks (64 weights) per step: the weight nibbles are widened
// to bytes in activation order and multiplied with vpdpbusd (unsigned weights x signed
// activations). Integer corrections (Q4_0's -8, Q8_0's +128 bias) are applied per block in the
// integer domain so that each block's integer dot product is exact, as llama.cpp's is.
// A portable path computes the same integer sums one block at a time.
#include "kiln_quant.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define KILN_VNNI 1
#include <immintrin.h>
#else
#define KILN_VNNI 0
#endif

#define KILN_ALWAYS_INLINE static inline __attribute__((always_inline))
#ifndef KILN_PREFETCH_ROWS
#define KILN_PREFETCH_ROWS 16  // rows ahead: four 4-row tiles
#endif

int kiln_quant_uses_vnni(void) { return KILN_VNNI; }

size_t kiln_quant_block_bytes(int type) {
    switch (type) {
    case KILN_QTYPE_Q4_0: return 18;
    case KILN_QTYPE_Q4_1: return 20;
    case KILN_QTYPE_Q8_0: return 34;
    default: return 0;
    }
}

// ---- f16 / bf16 ----------------------------------------------------------------------------

float kiln_f16_to_f32_scalar(uint16_t h) {
#if KILN_VNNI
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: renormalize
            exponent = 127 - 15 + 1;
            while ((mantissa & 0x400) == 0) { mantissa <<= 1; exponent--; }
            bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

uint16_t kiln_f32_to_f16(float value) {
#if KILN_VNNI
    return (uint16_t)_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT);
#else
    // Round-to-nearest-even through the magic-number method for finite values.
    uint32_t x;
    memcpy(&x, &value, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t abs = x & 0x7FFFFFFF;
    if (abs >= 0x7F800000) return (uint16_t)(sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 : 0));
    if (abs >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // overflow to infinity
    if (abs < 0x38800000) {  // subnormal or zero in f16
        float f;
        memcpy(&f, &abs, 4);
        f += 0.5f;  // 2^-1 puts the f16 subnormal grid in the low mantissa bits
        uint32_t r;
        memcpy(&r, &f, 4);
        return (uint16_t)(sign | (r - 0x3F000000));
    }
    uint32_t mantissaOdd = (abs >> 13) & 1;
    abs += 0xC8000FFF + mantissaOdd;  // rebias exponent (-112 << 23) and round
    return (uint16_t)(sign | (abs >> 13));
#endif
}

void kiln_f16_to_f32(const uint16_t *in, int64_t count, float *out) {
    int64_t i = 0;
#if KILN_VNNI
    for (; i + 16 <= count; i += 16) {
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(in + i))));
    }
#endif
    for (; i < count; i++) out[i] = kiln_f16_to_f32_scalar(in[i]);
}

void kiln_bf16_to_f32(const uint16_t *in, int64_t count, float *out) {
    for (int64_t i = 0; i < count; i++) {
        uint32_t bits = (uint32_t)in[i] << 16;
        memcpy(out + i, &bits, 4);
    }
}

// ---- activations ---------------------------------------------------------------------------

void kiln_quantize_activations(const float *x, int64_t blockCount, KilnQ8Activations out, int64_t row) {
    int64_t base = row * blockCount;
    for (int64_t b = 0; b < blockCount; b++) {
        const float *v = x + b * KILN_QK;
        int8_t *q = out.values + (base + b) * KILN_QK;
        float amax = 0.0f;
        for (int j = 0; j < KILN_QK; j++) amax = fmaxf(amax, fabsf(v[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < KILN_QK; j++) {
            int32_t qi = (int32_t)nearbyintf(v[j] * id);  // ties to even, as llama.cpp's AVX path
            q[j] = (int8_t)qi;
            sum += qi;
        }
        out.scales[base + b] = kiln_f16_to_f32_scalar(kiln_f32_to_f16(d));
        out.sums[base + b] = kiln_f16_to_f32_scalar(kiln_f32_to_f16(d * (float)sum));
        out.integerSums[base + b] = sum;
    }
}

// ---- dequantization ------------------------------------------------------------------------

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void kiln_dequantize(int type, const void *blocks, int64_t blockCount, float *out) {
    const uint8_t *p = (const uint8_t *)blocks;
    const size_t bytes = kiln_quant_block_bytes(type);
    for (int64_t b = 0; b < blockCount; b++, p += bytes, out += KILN_QK) {
        const float d = kiln_f16_to_f32_scalar(load_u16(p));
        switch (type) {
        case KILN_QTYPE_Q4_0:
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)((p[2 + j] & 0x0F) - 8);
                out[j + 16] = d * (float)((p[2 + j] >> 4) - 8);
            }
            break;
        case KILN_QTYPE_Q4_1: {
            const float m = kiln_f16_to_f32_scalar(load_u16(p + 2));
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)(p[4 + j] & 0x0F) + m;
                out[j + 16] = d * (float)(p[4 + j] >> 4) + m;
            }
            break;
        }
        case KILN_QTYPE_Q8_0:
            for (int j = 0; j < 32; j++) out[j] = d * (float)(int8_t)p[2 + j];
            break;
        default:
            return;
        }
    }
}

// ---- dot products --------------------------------------------------------------------------

// Per block: the exact integer dot Σ w_q * a_q with each type's offset removed, its float scale,
// and an additive float term (Q4_1's m * s). Used by the portable path and for odd tail blocks.
KILN_ALWAYS_INLINE float block_dot_portable(int type, const uint8_t *p, const int8_t *a, float da,
                                            float sa) {
    const float d = kiln_f16_to_f32_scalar(load_u16(p));
    int32_t sum = 0;
    switch (type) {
    case KILN_QTYPE_Q4_0:
        for (int j = 0; j < 16; j++) {
            sum += ((p[2 + j] & 0x0F) - 8) * a[j] + ((p[2 + j] >> 4) - 8) * a[j + 16];
        }
        return d * da * (float)sum;
    case KILN_QTYPE_Q4_1: {
        const float m = kiln_f16_to_f32_scalar(load_u16(p + 2));
        for (int j = 0; j < 16; j++) sum += (p[4 + j] & 0x0F) * a[j] + (p[4 + j] >> 4) * a[j + 16];
        return d * da * (float)sum + m * sa;
    }
    case KILN_QTYPE_Q8_0:
        for (int j = 0; j < 32; j++) sum += (int8_t)p[2 + j] * a[j];
        return d * da * (float)sum;
    default:
        return 0.0f;
    }
}

#if KILN_VNNI

// Two 4-bit blocks' nibbles (16 bytes each) widened to 64 bytes in activation order:
// [low nibbles of block 0, high nibbles of block 0, low of block 1, high of block 1].
KILN_ALWAYS_INLINE __m512i unpack_nibble_pair(const uint8_t *qs0, const uint8_t *qs1) {
    const __m256i both = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)qs1),
                                          _mm_loadu_si128((const __m128i *)qs0));
    const __m512i spread = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                                    _mm512_castsi256_si512(both));
    const __m512i shifts = _mm512_setr_epi64(0, 0, 0x0004000400040004LL, 0x0004000400040004LL, 0, 0,
                                             0x0004000400040004LL, 0x0004000400040004LL);
    return _mm512_and_si512(_mm512_srlv_epi16(spread, shifts), _mm512_set1_epi8(0x0F));
}

// Signed Q8_0 weights of two blocks, biased by +128 so that vpdpbusd can take them as unsigned.
KILN_ALWAYS_INLINE __m512i load_q8_pair_biased(const uint8_t *qs0, const uint8_t *qs1) {
    const __m512i pair = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)qs0)),
        _mm256_loadu_si256((const __m256i *)qs1), 1);
    return _mm512_xor_si512(pair, _mm512_set1_epi8((char)0x80));
}

// Puts c0 into lane 0 and c1 into lane 8 (the first lane of each block's eight), zero elsewhere.
KILN_ALWAYS_INLINE __m512i block_pair_correction(int32_t c0, int32_t c1) {
    return _mm512_mask_blend_epi32(0x0100, _mm512_maskz_set1_epi32(0x0001, c0),
                                   _mm512_maskz_set1_epi32(0x0100, c1));
}

KILN_ALWAYS_INLINE __m512 pair_scale(float s0, float s1) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

// R weight rows against T activation rows (R·T ≤ 4 accumulator pairs), results into
// out[t * outStride + r]. Independent accumulators per (row, token) keep the FMA dependency chains
// apart; activation vectors and the per-token integer corrections are loaded once per block pair
// and shared by the R rows.
KILN_ALWAYS_INLINE void tile_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int R,
                                  int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int T,
                                  float *out, int64_t outStride) {
    const size_t bytes = kiln_quant_block_bytes(type);
    __m512 acc[4][4];
    float extra[4][4];
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T; t++) {
            acc[r][t] = _mm512_setzero_ps();
            extra[r][t] = 0.0f;
        }
    }
    const int32_t bias = type == KILN_QTYPE_Q4_0 ? 8 : (type == KILN_QTYPE_Q8_0 ? 128 : 0);
    int64_t b = 0;
    for (; b + 2 <= blockCount; b += 2) {
        __m512i av[4], correction[4];
        float as0[4], as1[4];
        for (int t = 0; t < T; t++) {
            const int64_t block = (firstToken + t) * blockCount + b;
            av[t] = _mm512_loadu_si512((const void *)(a.values + block * KILN_QK));
            as0[t] = a.scales[block];
            as1[t] = a.scales[block + 1];
            if (bias != 0) {
                correction[t] = block_pair_correction(bias * a.integerSums[block], bias * a.integerSums[block + 1]);
            }
        }
        for (int r = 0; r < R; r++) {
            const uint8_t *p0 = base + (size_t)(firstRow + r) * rowBytes + b * bytes;
            const uint8_t *p1 = p0 + bytes;
            // Decode streams weights from DRAM once: fetch the same spot of the rows four tiles
            // ahead into L2, so loads are in flight while this tile computes (L1 prefetches
            // measured slower: they evict the activations).
            if (T == 1) _mm_prefetch((const char *)(p0 + KILN_PREFETCH_ROWS * rowBytes), _MM_HINT_T1);
            const float d0 = _cvtsh_ss(load_u16(p0));
            const float d1 = _cvtsh_ss(load_u16(p1));
            __m512i w;
            float m0 = 0, m1 = 0;
            if (type == KILN_QTYPE_Q4_1) {
                m0 = _cvtsh_ss(load_u16(p0 + 2));
                m1 = _cvtsh_ss(load_u16(p1 + 2));
                w = unpack_nibble_pair(p0 + 4, p1 + 4);
            } else if (type == KILN_QTYPE_Q4_0) {
                w = unpack_nibble_pair(p0 + 2, p1 + 2);
            } else {
                w = load_q8_pair_biased(p0 + 2, p1 + 2);
            }
            for (int t = 0; t < T; t++) {
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, av[t]);
                if (bias != 0) {
                    dot = _mm512_sub_epi32(dot, correction[t]);
                } else {
                    const int64_t block = (firstToken + t) * blockCount + b;
                    extra[r][t] += m0 * a.sums[block] + m1 * a.sums[block + 1];
                }
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pair_scale(d0 * as0[t], d1 * as1[t]), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        const uint8_t *row = base + (size_t)(firstRow + r) * rowBytes;
        for (int t = 0; t < T; t++) {
            float total = _mm512_reduce_add_ps(acc[r][t]) + extra[r][t];
            if (b < blockCount) {  // odd tail block
                const int64_t block = (firstToken + t) * blockCount + b;
                total += block_dot_portable(type, row + b * bytes, a.values + block * KILN_QK, a.scales[block],
                                            a.sums[block]);
            }
            out[(firstToken + t) * outStride + firstRow + r] = total;
        }
    }
}

// Prefill tile: four weight rows × four tokens, sixteen accumulators. Each row's nibbles are
// widened once per block pair and each token's activations loaded once, so the unpacking is
// shared by four tokens and the activation loads by four rows. Q4_1's m·s term goes into the
// same accumulator as a second FMA (each of a block's 8 lanes carries 1/8 of it).
KILN_ALWAYS_INLINE void tile4x4_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow,
                                     int64_t blockCount, KilnQ8Activations a, int64_t firstToken,
                                     float *out, int64_t outStride) {
    const size_t bytes = kiln_quant_block_bytes(type);
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++) {
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    }
    const int32_t bias = type == KILN_QTYPE_Q4_0 ? 8 : (type == KILN_QTYPE_Q8_0 ? 128 : 0);
    int64_t b = 0;
    for (; b + 2 <= blockCount; b += 2) {
        __m512 aScale[4], aSum[4];
        __m512i correction[4];
        for (int t = 0; t < 4; t++) {
            const int64_t block = (firstToken + t) * blockCount + b;
            aScale[t] = pair_scale(a.scales[block], a.scales[block + 1]);
            if (type == KILN_QTYPE_Q4_1) aSum[t] = pair_scale(0.125f * a.sums[block], 0.125f * a.sums[block + 1]);
            if (bias != 0) {
                correction[t] = block_pair_correction(bias * a.integerSums[block], bias * a.integerSums[block + 1]);
            }
        }
        for (int r = 0; r < 4; r++) {
            const uint8_t *p0 = base + (size_t)(firstRow + r) * rowBytes + b * bytes;
            const uint8_t *p1 = p0 + bytes;
            const __m512 wScale = pair_scale(_cvtsh_ss(load_u16(p0)), _cvtsh_ss(load_u16(p1)));
            __m512 wMin = _mm512_setzero_ps();
            __m512i w;
            if (type == KILN_QTYPE_Q4_1) {
                wMin = pair_scale(_cvtsh_ss(load_u16(p0 + 2)), _cvtsh_ss(load_u16(p1 + 2)));
                w = unpack_nibble_pair(p0 + 4, p1 + 4);
            } else if (type == KILN_QTYPE_Q4_0) {
                w = unpack_nibble_pair(p0 + 2, p1 + 2);
            } else {
                w = load_q8_pair_biased(p0 + 2, p1 + 2);
            }
            for (int t = 0; t < 4; t++) {
                const int64_t block = (firstToken + t) * blockCount + b;
                const __m512i av = _mm512_loadu_si512((const void *)(a.values + block * KILN_QK));
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, av);
                if (bias != 0) dot = _mm512_sub_epi32(dot, correction[t]);
                acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), aScale[t]), wScale, acc[r][t]);
                if (type == KILN_QTYPE_Q4_1) acc[r][t] = _mm512_fmadd_ps(wMin, aSum[t], acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++) {
        const uint8_t *row = base + (size_t)(firstRow + r) * rowBytes;
        for (int t = 0; t < 4; t++) {
            float total = _mm512_reduce_add_ps(acc[r][t]);
            if (b < blockCount) {  // odd tail block
                const int64_t block = (firstToken + t) * blockCount + b;
                total += block_dot_portable(type, row + b * bytes, a.values + block * KILN_QK, a.scales[block],
                                            a.sums[block]);
            }
            out[(firstToken + t) * outStride + firstRow + r] = total;
        }
    }
}

#endif  // KILN_VNNI

// The portable path: one block at a time, same per-block integer sums.
KILN_ALWAYS_INLINE void tile_portable(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int R,
                                      int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int T,
                                      float *out, int64_t outStride) {
    const size_t bytes = kiln_quant_block_bytes(type);
    for (int r = 0; r < R; r++) {
        const uint8_t *row = base + (size_t)(firstRow + r) * rowBytes;
        for (int t = 0; t < T; t++) {
            float total = 0.0f;
            for (int64_t b = 0; b < blockCount; b++) {
                const int64_t block = (firstToken + t) * blockCount + b;
                total += block_dot_portable(type, row + b * bytes, a.values + block * KILN_QK, a.scales[block],
                                            a.sums[block]);
            }
            out[(firstToken + t) * outStride + firstRow + r] = total;
        }
    }
}

#if KILN_VNNI
#define KILN_TILE tile_vnni
#else
#define KILN_TILE tile_portable
#endif

float kiln_quant_dot(int type, const void *weights, KilnQ8Activations a, int64_t row, int64_t blockCount) {
    float sum = 0.0f;
    // A one-row "matrix"; outStride 0 sends the result for token `row` to index 0.
    KILN_TILE(type, (const uint8_t *)weights, 0, 0, 1, blockCount, a, row, 1, &sum, 0);
    return sum;
}

// Tiles: a single activation row (decode) takes weight rows four at a time; a batch (prefill)
// takes four weight rows against four activation rows, so every block is unpacked once per four
// tokens and every activation block loaded once per four rows. Specialized per type so the inner
// branches fold away.
#if KILN_VNNI
#define KILN_TILE4x4(TYPE, r, t) tile4x4_vnni(TYPE, base, rowBytes, r, blockCount, a, t, out, outStride)
#else
#define KILN_TILE4x4(TYPE, r, t) tile_portable(TYPE, base, rowBytes, r, 4, blockCount, a, t, 4, out, outStride)
#endif

#define KILN_MATMUL_BODY(TYPE)                                                                       \
    if (tokenCount == 1) {                                                                           \
        int64_t r = rowBegin;                                                                        \
        for (; r + 4 <= rowEnd; r += 4) KILN_TILE(TYPE, base, rowBytes, r, 4, blockCount, a, 0, 1, out, outStride); \
        for (; r < rowEnd; r++) KILN_TILE(TYPE, base, rowBytes, r, 1, blockCount, a, 0, 1, out, outStride);       \
    } else {                                                                                         \
        int64_t r = rowBegin;                                                                        \
        for (; r + 4 <= rowEnd; r += 4) {                                                            \
            int64_t t = 0;                                                                           \
            for (; t + 4 <= tokenCount; t += 4) KILN_TILE4x4(TYPE, r, t);                            \
            for (; t < tokenCount; t++) KILN_TILE(TYPE, base, rowBytes, r, 4, blockCount, a, t, 1, out, outStride); \
        }                                                                                            \
        for (; r < rowEnd; r++) {                                                                    \
            int64_t t = 0;                                                                           \
            for (; t + 4 <= tokenCount; t += 4) KILN_TILE(TYPE, base, rowBytes, r, 1, blockCount, a, t, 4, out, outStride); \
            for (; t < tokenCount; t++) KILN_TILE(TYPE, base, rowBytes, r, 1, blockCount, a, t, 1, out, outStride);       \
        }                                                                                            \
    }

void kiln_quant_matmul(int type, const void *weights, size_t rowBytes, int64_t rowBegin, int64_t rowEnd,
                       int64_t blockCount, KilnQ8Activations a, int64_t tokenCount, float *out,
                       int64_t outStride) {
    const uint8_t *base = (const uint8_t *)weights;
    switch (type) {
    case KILN_QTYPE_Q4_0: KILN_MATMUL_BODY(KILN_QTYPE_Q4_0) break;
    case KILN_QTYPE_Q4_1: KILN_MATMUL_BODY(KILN_QTYPE_Q4_1) break;
    case KILN_QTYPE_Q8_0: KILN_MATMUL_BODY(KILN_QTYPE_Q8_0) break;
    default: break;
    }
}

float kiln_stream_sum(const float *x, int64_t count) {
    int64_t i = 0;
    float total = 0.0f;
#if KILN_VNNI
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(),
           s3 = _mm512_setzero_ps();
    for (; i + 64 <= count; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
    }
    total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#endif
    for (; i < count; i++) total += x[i];
    return total;
}
