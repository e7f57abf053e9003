// The AVX-512 VNNI tiles of the 32-weight types whose llama.cpp order is lane-wise (Q4_1, Q5_0,
// Q5_1, Q8_0); every other type takes quant_types.c's exact kernels. Also the
// f16/bf16 conversions and the q8_0/q8_1 activation quantization (formats in kiln_quant.h).
//
// The AVX-512 VNNI path widens the weight nibbles to bytes in activation order and multiplies them
// with vpdpbusd (unsigned x signed; signed weights through |w| and a sign-flipped activation).
// Integer sums are exact; the float steps after them follow llama.cpp's CPU order (see "dot
// products" below), so Kiln and llama.cpp produce the same bits from the same file. Without VNNI
// quant_types.c's portable kernels compute the same sums and float steps.
#include "kiln_quant.h"
#include "quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


// 16-row tiles read sixteen interleaved row streams, more than the hardware prefetcher follows:
// each block fetches the same spot of the next tile into L2.
#ifndef KILN_TILE_PREFETCH_AHEAD
#define KILN_TILE_PREFETCH_AHEAD (16 * rowBytes)
#endif
#ifndef KILN_PREFETCH_ROWS
#define KILN_PREFETCH_ROWS 16  // rows ahead: four 4-row tiles
#endif

int kiln_quant_uses_vnni(void) { return KILN_VNNI; }

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
    if (out.kValues) kiln_quantize_q8_K(x, blockCount / 8, out, row);
    if (out.halfValues || out.bfloatValues) {
        const int64_t n = blockCount * 32;
        kiln_convert_half_activations(x, n, out.halfValues ? out.halfValues + row * n : NULL,
                                      out.bfloatValues ? out.bfloatValues + row * n : NULL);
    }
}

// ---- dot products --------------------------------------------------------------------------
//
// Every output follows llama.cpp's x86 order exactly, so logits agree to the last bit: per block,
// eight lanes each hold the integer dot of four consecutive elements, scaled by the float product
// d_w·d_a and accumulated with one FMA per block; the eight lanes are then summed pairwise
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), and Q4_1's Σ m·s (its own FMA chain) is added last.
// The VNNI kernels keep two weight rows in one 512-bit register, one row per 256-bit half: in
// tiles of 4 rows × 4 tokens for batches (tile_vnni), of 16 rows for one token (lanes32_tokens_tile).
// Q4_0 and IQ4_NL follow the repacked order instead (rows32_vnni).

#if KILN_VNNI

// Two 4-bit blocks' nibbles (16 bytes each) widened to 64 bytes in activation order:
// [low nibbles of block 0, high nibbles of block 0, low of block 1, high of block 1].
KILN_ALWAYS_INLINE __m512i unpack_nibble_pair(const uint8_t *qs0, const uint8_t *qs1) {
    const __m256i both = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)qs1),
                                          _mm_loadu_si128((const __m128i *)qs0));
    const __m512i spread = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                                    _mm512_castsi256_si512(both));
    return kiln_nibbles_by_qword(spread, 0xCC);
}

// Signed weights times signed activations through vpdpbusd (unsigned × signed): |w| against a
// carrying w's sign. Exact, as |w| ≤ 128 and activations stay within ±127.
KILN_ALWAYS_INLINE __m512i dot_signed(__m512i w, __m512i a) {
    const __m512i flipped = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), flipped);
}

KILN_ALWAYS_INLINE __m512 pair_scale(float s0, float s1) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

KILN_ALWAYS_INLINE float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// R weight rows (1…4) against T activation rows (1…4), results into out[t * outStride + r].
// Rows go in pairs, one per 256-bit half (an odd last row is paired with itself); each token's
// activation block is broadcast to both halves and shared by the pairs, each pair's weights are
// widened once and shared by the tokens.
// `offsets` (Q5_0, Q8_0; or NULL): every token's quad-sum corrections (kiln_offset_sums over all
// tokens from 0), with which signed weights widen to unsigned w + offset and each product is one
// vpdpbusd instead of a sign transfer per token.
KILN_ALWAYS_INLINE void tile_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int R,
                                  int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int T,
                                  const int32_t *offsets, float *out, int64_t outStride) {
    const size_t bytes = kiln_quant_block_bytes(type);
    const int P = (R + 1) / 2;
    __m512 acc[2][4];
    float summs[4][4];
    for (int p = 0; p < 2; p++) {
        for (int t = 0; t < 4; t++) acc[p][t] = _mm512_setzero_ps();
    }
    for (int r = 0; r < 4; r++) {
        for (int t = 0; t < 4; t++) summs[r][t] = 0.0f;
    }
    for (int64_t b = 0; b < blockCount; b++) {
        __m512i av[4], start[4];
        float as[4];
        for (int t = 0; t < T; t++) {
            const int64_t block = (firstToken + t) * blockCount + b;
            av[t] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(a.values + block * KILN_QK)));
            start[t] = offsets ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(offsets + block * 8))) : _mm512_setzero_si512();
            as[t] = a.scales[block];
        }
        for (int p = 0; p < P; p++) {
            const int r0 = 2 * p, r1 = 2 * p + 1 < R ? 2 * p + 1 : 2 * p;
            const uint8_t *p0 = base + (size_t)(firstRow + r0) * rowBytes + b * bytes;
            const uint8_t *p1 = base + (size_t)(firstRow + r1) * rowBytes + b * bytes;
            // Decode streams weights from DRAM once: fetch the same spot of the rows four tiles
            // ahead into L2, so loads are in flight while this tile computes.
            if (T == 1) {
                _mm_prefetch((const char *)(p0 + KILN_PREFETCH_ROWS * rowBytes), _MM_HINT_T1);
                _mm_prefetch((const char *)(p1 + KILN_PREFETCH_ROWS * rowBytes), _MM_HINT_T1);
            }
            const __m512 wScale = pair_scale(_cvtsh_ss(load_u16(p0)), _cvtsh_ss(load_u16(p1)));
            __m512i w;
            if (type == KILN_QTYPE_Q4_1) {
                w = unpack_nibble_pair(p0 + 4, p1 + 4);
                const float m0 = _cvtsh_ss(load_u16(p0 + 2)), m1 = _cvtsh_ss(load_u16(p1 + 2));
                for (int t = 0; t < T; t++) {
                    const float s = a.sums[(firstToken + t) * blockCount + b];
                    summs[r0][t] = fmaf(m0, s, summs[r0][t]);
                    if (r1 != r0) summs[r1][t] = fmaf(m1, s, summs[r1][t]);
                }
            } else if (type == KILN_QTYPE_Q5_0 || type == KILN_QTYPE_Q5_1) {
                // The fifth bits (32 per block, bit j for weight j) as 0xFF bytes of the pair.
                const int high = type == KILN_QTYPE_Q5_1 ? 4 : 2;
                uint32_t h0, h1;
                memcpy(&h0, p0 + high, 4);
                memcpy(&h1, p1 + high, 4);
                const __m512i set = _mm512_movm_epi8(((uint64_t)h1 << 32) | h0);
                const __m512i nibbles = unpack_nibble_pair(p0 + high + 4, p1 + high + 4);
                if (type == KILN_QTYPE_Q5_0 && offsets) {
                    w = _mm512_or_si512(nibbles, _mm512_and_si512(set, _mm512_set1_epi8(0x10)));  // q, unsigned
                } else if (type == KILN_QTYPE_Q5_0) {
                    // q − 16 as a signed byte: the nibble, with 0xF0 or-ed in where the bit is clear.
                    w = _mm512_or_si512(nibbles, _mm512_andnot_si512(set, _mm512_set1_epi8((char)0xF0)));
                } else {
                    w = _mm512_or_si512(nibbles, _mm512_and_si512(set, _mm512_set1_epi8(0x10)));
                    const float m0 = _cvtsh_ss(load_u16(p0 + 2)), m1 = _cvtsh_ss(load_u16(p1 + 2));
                    for (int t = 0; t < T; t++) {
                        const float s = a.sums[(firstToken + t) * blockCount + b];
                        summs[r0][t] = fmaf(m0, s, summs[r0][t]);
                        if (r1 != r0) summs[r1][t] = fmaf(m1, s, summs[r1][t]);
                    }
                }
            } else {
                w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                       _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1);
                if (offsets) w = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));  // q + 128
            }
            const int unsignedWeights = type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q5_1 || offsets;
            for (int t = 0; t < T; t++) {
                const __m512i dot = unsignedWeights ? _mm512_dpbusd_epi32(start[t], w, av[t])
                                                    : dot_signed(w, av[t]);
                const __m512 scale = _mm512_mul_ps(wScale, _mm512_set1_ps(as[t]));
                acc[p][t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), acc[p][t]);
            }
        }
    }
    for (int p = 0; p < P; p++) {
        for (int t = 0; t < T; t++) {
            const int r0 = 2 * p;
            out[(firstToken + t) * outStride + firstRow + r0] =
                hsum8(_mm512_castps512_ps256(acc[p][t])) + summs[r0][t];
            if (r0 + 1 < R) {
                out[(firstToken + t) * outStride + firstRow + r0 + 1] =
                    hsum8(_mm512_extractf32x8_ps(acc[p][t], 1)) + summs[r0 + 1][t];
            }
        }
    }
}


// ---- batches: widened row tiles -------------------------------------------------------------
//
// In tile_vnni every weight block is widened again for each group of four tokens, and widening
// (nibbles, fifth bits, f16 scales) costs about as much as the block's products. For a batch the
// blocks of eight rows are widened once into a per-thread scratch — unsigned bytes, the pair's
// scales as one float vector, the mins one lane per row — and every group of four tokens then
// runs from it: per row pair, token and block one vpdpbusd, one multiply, one conversion and one
// FMA, in tile_vnni's order and with its Σ m·s chains, so the results are the same bits.
enum { WIDE_ROWS = 8, WIDE_PAIRS = WIDE_ROWS / 2 };

typedef struct {
    __m512i *weights;  // [block][pair]
    __m512 *scales;    // [block][pair]
    float *mins;       // [block][row] (Q4_1, Q5_1)
} WideRows;

static _Thread_local void *wideBuffer;
static _Thread_local size_t wideCapacity;

// The per-thread scratch for `blockCount` blocks of eight rows; 0 when it cannot be had.
static int wide_rows_scratch(int64_t blockCount, WideRows *rows) {
    const size_t pairBytes = (size_t)blockCount * WIDE_PAIRS * 64;
    const size_t need = 2 * pairBytes + (size_t)blockCount * WIDE_ROWS * sizeof(float) + 64;
    if (need > wideCapacity) {
        free(wideBuffer);
        wideBuffer = aligned_alloc(64, (need + 63) / 64 * 64);
        wideCapacity = wideBuffer ? need : 0;
        if (!wideBuffer) return 0;
    }
    uint8_t *base = (uint8_t *)wideBuffer;
    rows->weights = (__m512i *)base;
    rows->scales = (__m512 *)(base + pairBytes);
    rows->mins = (float *)(base + 2 * pairBytes);
    return 1;
}

// Two rows' block as unsigned bytes, one row per 256-bit half: Q4_1's nibbles, Q5_0's and
// Q5_1's q (Q5_0's offset 16 is corrected through the activations' quad sums), Q8_0's q + 128.
KILN_ALWAYS_INLINE __m512i widen_pair_unsigned(const int type, const uint8_t *p0, const uint8_t *p1) {
    if (type == KILN_QTYPE_Q8_0) {
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                             _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1);
        return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
    }
    if (type == KILN_QTYPE_Q4_1) return unpack_nibble_pair(p0 + 4, p1 + 4);
    const int high = type == KILN_QTYPE_Q5_1 ? 4 : 2;
    uint32_t h0, h1;
    memcpy(&h0, p0 + high, 4);
    memcpy(&h1, p1 + high, 4);
    const __m512i nibbles = unpack_nibble_pair(p0 + high + 4, p1 + high + 4);
    return _mm512_mask_add_epi8(nibbles, _cvtu64_mask64(((uint64_t)h1 << 32) | h0), nibbles, _mm512_set1_epi8(16));
}

KILN_ALWAYS_INLINE void widen_rows(const int type, const uint8_t *base, size_t rowBytes, int64_t r0, int64_t blockCount,
                                   WideRows rows) {
    const size_t bytes = kiln_quant_block_bytes(type);
    for (int64_t b = 0; b < blockCount; b++) {
        for (int p = 0; p < WIDE_PAIRS; p++) {
            const uint8_t *p0 = base + (size_t)(r0 + 2 * p) * rowBytes + b * bytes, *p1 = p0 + rowBytes;
            rows.weights[b * WIDE_PAIRS + p] = widen_pair_unsigned(type, p0, p1);
            rows.scales[b * WIDE_PAIRS + p] = pair_scale(_cvtsh_ss(load_u16(p0)), _cvtsh_ss(load_u16(p1)));
            if (type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q5_1) {
                rows.mins[b * WIDE_ROWS + 2 * p] = _cvtsh_ss(load_u16(p0 + 2));
                rows.mins[b * WIDE_ROWS + 2 * p + 1] = _cvtsh_ss(load_u16(p1 + 2));
            }
        }
    }
}

// Eight widened rows against T (1…4) tokens from t0; `offsets` as in tile_vnni (Q5_0, Q8_0).
KILN_ALWAYS_INLINE void wide_tile(const int type, const int T, WideRows rows, int64_t r0, int64_t blockCount,
                                  KilnQ8Activations a, int64_t t0, const int32_t *offsets, float *out, int64_t outStride) {
    const int hasMin = type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q5_1;
    __m512 acc[WIDE_PAIRS][4];
    __m256 summs[4];
    for (int t = 0; t < 4; t++) {
        summs[t] = _mm256_setzero_ps();
        for (int p = 0; p < WIDE_PAIRS; p++) acc[p][t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < blockCount; b++) {
        __m512i av[4];
        __m512 as[4];
        for (int t = 0; t < T; t++) {
            const int64_t block = (t0 + t) * blockCount + b;
            av[t] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(a.values + block * KILN_QK)));
            as[t] = _mm512_set1_ps(a.scales[block]);
            if (hasMin) summs[t] = _mm256_fmadd_ps(_mm256_load_ps(rows.mins + b * WIDE_ROWS), _mm256_set1_ps(a.sums[block]), summs[t]);
        }
        for (int p = 0; p < WIDE_PAIRS; p++) {
            const __m512i w = rows.weights[b * WIDE_PAIRS + p];
            const __m512 ws = rows.scales[b * WIDE_PAIRS + p];
            for (int t = 0; t < T; t++) {
                const __m512i start = hasMin ? _mm512_setzero_si512()
                    : _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(offsets + ((t0 + t) * blockCount + b) * 8)));
                const __m512i dot = _mm512_dpbusd_epi32(start, w, av[t]);
                acc[p][t] = _mm512_fmadd_ps(_mm512_mul_ps(ws, as[t]), _mm512_cvtepi32_ps(dot), acc[p][t]);
            }
        }
    }
    for (int t = 0; t < T; t++) {
        float m[WIDE_ROWS];
        _mm256_storeu_ps(m, summs[t]);
        float *row = out + (t0 + t) * outStride + r0;
        for (int p = 0; p < WIDE_PAIRS; p++) {
            row[2 * p] = hsum8(_mm512_castps512_ps256(acc[p][t])) + m[2 * p];
            row[2 * p + 1] = hsum8(_mm512_extractf32x8_ps(acc[p][t], 1)) + m[2 * p + 1];
        }
    }
}

KILN_ALWAYS_INLINE void wide_rows_matmul(const int type, const uint8_t *base, size_t rowBytes, int64_t r0, int64_t blockCount,
                                         KilnQ8Activations a, int64_t tokenCount, const int32_t *offsets, WideRows rows,
                                         float *out, int64_t outStride) {
    widen_rows(type, base, rowBytes, r0, blockCount, rows);
    for (int64_t t = 0; t < tokenCount; t += 4) {
        switch (tokenCount - t < 4 ? (int)(tokenCount - t) : 4) {
        case 1: wide_tile(type, 1, rows, r0, blockCount, a, t, offsets, out, outStride); break;
        case 2: wide_tile(type, 2, rows, r0, blockCount, a, t, offsets, out, outStride); break;
        case 3: wide_tile(type, 3, rows, r0, blockCount, a, t, offsets, out, outStride); break;
        default: wide_tile(type, 4, rows, r0, blockCount, a, t, offsets, out, outStride); break;
        }
    }
}

// Sixteen rows of a tile from row r0 (a short tile of R rows repeats its last row; its extra
// lanes are dropped), with the byte offsets of their rows for gathering one field of each.
typedef struct {
    const uint8_t *row[16];
    const uint8_t *base;
    __m512i gatherOffsets;
} RowTile;

KILN_ALWAYS_INLINE RowTile row_tile(const uint8_t *base, size_t rowBytes, int64_t r0, int R) {
    RowTile tile;
    int32_t lane[16];
    for (int i = 0; i < 16; i++) {
        const int r = i < R ? i : R - 1;
        tile.row[i] = base + (size_t)(r0 + r) * rowBytes;
        lane[i] = (int32_t)((size_t)r * rowBytes);
    }
    tile.base = base + (size_t)r0 * rowBytes;
    tile.gatherOffsets = _mm512_loadu_si512((const void *)lane);
    return tile;
}

// The f16 at byte `offset` of each of a tile's sixteen rows, as floats: sixteen scalar loads
// into one vector, cheaper on AMD than a gather.
KILN_ALWAYS_INLINE __m512 row_scales16(const RowTile *tile, size_t offset) {
    __m128i lo = _mm_cvtsi32_si128(load_u16(tile->row[0] + offset)), hi = _mm_cvtsi32_si128(load_u16(tile->row[8] + offset));
    lo = _mm_insert_epi16(lo, load_u16(tile->row[1] + offset), 1);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[9] + offset), 1);
    lo = _mm_insert_epi16(lo, load_u16(tile->row[2] + offset), 2);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[10] + offset), 2);
    lo = _mm_insert_epi16(lo, load_u16(tile->row[3] + offset), 3);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[11] + offset), 3);
    lo = _mm_insert_epi16(lo, load_u16(tile->row[4] + offset), 4);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[12] + offset), 4);
    lo = _mm_insert_epi16(lo, load_u16(tile->row[5] + offset), 5);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[13] + offset), 5);
    lo = _mm_insert_epi16(lo, load_u16(tile->row[6] + offset), 6);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[14] + offset), 6);
    lo = _mm_insert_epi16(lo, load_u16(tile->row[7] + offset), 7);
    hi = _mm_insert_epi16(hi, load_u16(tile->row[15] + offset), 7);
    return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// One token through Q4_1, Q5_0, Q5_1 or Q8_0 (decode), 16 rows at a time: the lanes order of
// tile_vnni, two rows per register, but the rows' f16 scales (and Q4_1 / Q5_1's mins, whose
// Σ m·s chains run one per float lane) are gathered once per block for all sixteen rows. Signed
// weights (Q5_0's q − 16, Q8_0's q) widen to unsigned bytes, corrected through the activations'
// quad sums as in the K-quant kernels, which saves the sign-transfer instructions per block.
enum { LANES32_TILE = 16, KILN_DECODE_STEP_TOKENS = 8 };

// One block of two rows of a tile as unsigned bytes (p0's 32 weights, then p1's), prefetching
// the next tile's (KILN_TILE_PREFETCH_AHEAD, in rows of `rowBytes`).
KILN_ALWAYS_INLINE __m512i lanes32_pair_weights(const int type, size_t rowBytes, const uint8_t *p0, const uint8_t *p1) {
    _mm_prefetch((const char *)(p0 + KILN_TILE_PREFETCH_AHEAD), _MM_HINT_T1);
    _mm_prefetch((const char *)(p1 + KILN_TILE_PREFETCH_AHEAD), _MM_HINT_T1);
    return widen_pair_unsigned(type, p0, p1);
}

// One token (decode) or T ≤ 4 tokens of a decoding step through Q4_1, Q5_0, Q5_1 or Q8_0, 16 rows
// at a time: the lanes order of tile_vnni, two rows per register, but the rows' f16 scales (and
// Q4_1 / Q5_1's mins, whose Σ m·s chains run one per float lane) are gathered once per block for
// all sixteen rows. Signed weights (Q5_0's q − 16, Q8_0's q) widen to unsigned bytes, corrected
// through the activations' quad sums as in the K-quant kernels, which saves the sign-transfer
// instructions per block. Each block's weights are loaded and widened once for all T tokens,
// whose products then run as they run for each token alone, so every token keeps its lone bits.
// `offsets` holds the T tokens' quad-sum corrections, token after token.
KILN_ALWAYS_INLINE void lanes32_tokens_tile(const int type, const int T, const uint8_t *base, size_t rowBytes, int64_t r0, int R,
                                            int64_t blockCount, KilnQ8Activations a, int64_t t0, const int32_t *offsets,
                                            float *out, int64_t outStride) {
    const size_t bytes = type == KILN_QTYPE_Q4_1 ? 20 : type == KILN_QTYPE_Q5_0 ? 22 : type == KILN_QTYPE_Q5_1 ? 24 : 34;
    const int hasMin = type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q5_1;
    const RowTile tile = row_tile(base, rowBytes, r0, R);
    __m512 acc[4][LANES32_TILE / 2];
    __m512 summs[4];
    for (int k = 0; k < T; k++) {
        for (int i = 0; i < LANES32_TILE / 2; i++) acc[k][i] = _mm512_setzero_ps();
        summs[k] = _mm512_setzero_ps();
    }
    __m512i nextWords = _mm512_i32gather_epi32(tile.gatherOffsets, tile.base, 1);  // d, then m or bits
    for (int64_t b = 0; b < blockCount; b++) {
        __m512i av[4], start[4];
        __m512 tokenScale[4];
        const __m512i words = nextWords;
        if (b + 1 < blockCount) nextWords = _mm512_i32gather_epi32(tile.gatherOffsets, tile.base + (b + 1) * bytes, 1);
        const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
        __m512 scaledD = d;  // one token: its scale applied once per block, before the moves
        for (int k = 0; k < T; k++) {
            const int64_t block = (t0 + k) * blockCount + b;
            av[k] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(a.values + block * KILN_QK)));
            start[k] = type == KILN_QTYPE_Q5_0 || type == KILN_QTYPE_Q8_0
                ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(offsets + (k * blockCount + b) * 8)))
                : _mm512_setzero_si512();
            tokenScale[k] = _mm512_set1_ps(a.scales[block]);
            if (T == 1) scaledD = _mm512_mul_ps(d, tokenScale[0]);
            if (hasMin) {
                const __m512 m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(words, 16)));
                summs[k] = _mm512_fmadd_ps(m, _mm512_set1_ps(a.sums[block]), summs[k]);
            }
        }
        for (int pr = 0; pr < LANES32_TILE / 2; pr++) {
            const __m512i w = lanes32_pair_weights(type, rowBytes, tile.row[2 * pr] + b * bytes, tile.row[2 * pr + 1] + b * bytes);
            // The rows' scales moved into the pair's lanes, times each token's scale (for several
            // tokens the move comes first, once; either order gives the same products).
            const __m512i pairIndex = _mm512_inserti64x4(_mm512_set1_epi32(2 * pr), _mm256_set1_epi32(2 * pr + 1), 1);
            const __m512 pairD = _mm512_permutexvar_ps(pairIndex, T == 1 ? scaledD : d);
            for (int k = 0; k < T; k++) {
                const __m512i dot = _mm512_dpbusd_epi32(start[k], w, av[k]);
                const __m512 pairScale = T == 1 ? pairD : _mm512_mul_ps(pairD, tokenScale[k]);
                acc[k][pr] = _mm512_fmadd_ps(pairScale, _mm512_cvtepi32_ps(dot), acc[k][pr]);
            }
        }
    }
    for (int k = 0; k < T; k++) {
        float m[LANES32_TILE];
        _mm512_storeu_ps(m, summs[k]);
        for (int i = 0; i < R; i++) {
            const __m512 x = acc[k][i / 2];
            const float lanes = hsum8(i % 2 ? _mm512_extractf32x8_ps(x, 1) : _mm512_castps512_ps256(x));
            out[(t0 + k) * outStride + r0 + i] = hasMin ? lanes + m[i] : lanes + 0.0f;
        }
    }
}

#define KILN_TOKENS_TILE(TYPE)                                                                      \
    switch (T) {                                                                                     \
    case 1: lanes32_tokens_tile(TYPE, 1, base, rowBytes, r0, R, blockCount, a, t0, offsets, out, outStride); break; \
    case 2: lanes32_tokens_tile(TYPE, 2, base, rowBytes, r0, R, blockCount, a, t0, offsets, out, outStride); break; \
    case 3: lanes32_tokens_tile(TYPE, 3, base, rowBytes, r0, R, blockCount, a, t0, offsets, out, outStride); break; \
    default: lanes32_tokens_tile(TYPE, 4, base, rowBytes, r0, R, blockCount, a, t0, offsets, out, outStride); break; \
    }

// One token, or a decoding step of up to 8 tokens, through Q4_1, Q5_0, Q5_1 or Q8_0: up to four
// tokens per pass over the rows, each keeping the bits it gets alone.
static void lanes32_decode_tokens(int type, const uint8_t *base, size_t rowBytes, int64_t rowBegin, int64_t rowEnd,
                                  int64_t blockCount, KilnQ8Activations a, int64_t tokenCount, float *out, int64_t outStride) {
    for (int64_t t0 = 0; t0 < tokenCount; t0 += 4) {
        const int T = tokenCount - t0 < 4 ? (int)(tokenCount - t0) : 4;
        const int32_t *offsets = NULL;
        if (type == KILN_QTYPE_Q5_0 || type == KILN_QTYPE_Q8_0) {
            offsets = kiln_offset_sums(a.values + t0 * blockCount * KILN_QK, T * blockCount * KILN_QK, type == KILN_QTYPE_Q8_0 ? 128 : 16);
            if (!offsets) {  // no scratch: the scalar kernel, in the same order
                kiln_quant_matmul_exact(type, base, rowBytes, rowBegin, rowEnd - rowBegin, blockCount, a, t0, T, out, outStride);
                continue;
            }
        }
        for (int64_t r0 = rowBegin; r0 < rowEnd; r0 += LANES32_TILE) {
            const int R = rowEnd - r0 < LANES32_TILE ? (int)(rowEnd - r0) : LANES32_TILE;
            switch (type) {
            case KILN_QTYPE_Q4_1: KILN_TOKENS_TILE(KILN_QTYPE_Q4_1) break;
            case KILN_QTYPE_Q5_0: KILN_TOKENS_TILE(KILN_QTYPE_Q5_0) break;
            case KILN_QTYPE_Q5_1: KILN_TOKENS_TILE(KILN_QTYPE_Q5_1) break;
            default: KILN_TOKENS_TILE(KILN_QTYPE_Q8_0) break;
            }
        }
    }
}

// Q4_0 and IQ4_NL, the 32-weight types llama.cpp repacks: per row and token, each block's exact
// integer dot, then one FMA by d_w·d_a per block, in block order (quant_types.c's dot_rows_32).
// Sixteen rows run together, one per float lane, so the FMA chains are one vector chain. Each
// row's two blocks widen to unsigned bytes (Q4_0's nibbles, IQ4_NL's grid + 128); vpdpbusd
// starts from −offset·(Σ of four activations), so its lanes hold Σ w·a exactly; one transposed
// reduction then turns sixteen rows × two blocks of eight lanes into two vectors of block sums.
enum { ROWS32_TILE = 16 };

#if defined(__AVX512VBMI__)
// Bytes of a block pair (d, 16 nibble bytes, d, 16 nibble bytes) in widening order:
// block b's nibble bytes, b + 1's, b's, b + 1's (a single last block: its own four times).
#define KILN_PAIR_ROW(o) 2 + (o), 3 + (o), 4 + (o), 5 + (o), 6 + (o), 7 + (o), 8 + (o), 9 + (o), \
    10 + (o), 11 + (o), 12 + (o), 13 + (o), 14 + (o), 15 + (o), 16 + (o), 17 + (o)
static const uint8_t rows32PairBytes[64] __attribute__((aligned(64))) = {
    KILN_PAIR_ROW(0), KILN_PAIR_ROW(18), KILN_PAIR_ROW(0), KILN_PAIR_ROW(18)};
static const uint8_t rows32SingleBytes[64] __attribute__((aligned(64))) = {
    KILN_PAIR_ROW(0), KILN_PAIR_ROW(0), KILN_PAIR_ROW(0), KILN_PAIR_ROW(0)};
#undef KILN_PAIR_ROW
#endif

// Up to four tokens from `t` share each widened block pair; `offsets` holds the tokens' quad-sum
// corrections one after another (blockCount · 8 each).
KILN_ALWAYS_INLINE void rows32_tile(const int iq4, const int T, const uint8_t *base, size_t rowBytes, int64_t r0, int R,
                                    int64_t blockCount, KilnQ8Activations a, int64_t t, const int32_t *offsets, float *out,
                                    int64_t outStride) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512i grid = _mm512_setzero_si512();
    if (iq4) {
        grid = _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)kiln_iq4nl_values), _mm_set1_epi8((char)0x80)));
    }
    const RowTile tile = row_tile(base, rowBytes, r0, R);
#if defined(__AVX512VBMI__)
    const __m512i nibblePairIndex = _mm512_loadu_si512((const void *)rows32PairBytes);
    const __m512i nibbleSingleIndex = _mm512_loadu_si512((const void *)rows32SingleBytes);
#endif
    __m512 acc[4];
    for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blockCount; b += 2) {
        const int pair = b + 1 < blockCount;
        const int64_t b1 = pair ? b + 1 : b;
        // Weights widen as [block b's low nibbles, b + 1's low, b's high, b + 1's high], which
        // needs no cross-lane shuffle per row; the activations and offsets take that order once.
        __m512i av[4], off[4];
        for (int j = 0; j < T; j++) {
            const int8_t *q = a.values + ((t + j) * blockCount + b) * KILN_QK;
            const int32_t *o = offsets + j * blockCount * 8 + b * 8;
            const __m512i qa = pair ? _mm512_loadu_si512((const void *)q) : _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
            const __m512i oa = pair ? _mm512_loadu_si512((const void *)o) : _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)o));
            av[j] = _mm512_shuffle_i64x2(qa, qa, 0xD8);
            off[j] = _mm512_shuffle_i64x2(oa, oa, 0xD8);
        }
        __m512i d[4][ROWS32_TILE];
#if defined(__AVX512VBMI__)
        // One 36-byte load per row holds both blocks; a byte permute widens the nibbles and a word
        // permute merges the two f16 scales into the row's slot of one vector, so the sixteen
        // rows' scales need neither a gather nor scalar loads.
        const __m512i pick = pair ? nibblePairIndex : nibbleSingleIndex;
        const __m512i scalePick = _mm512_set1_epi32(pair ? 9 << 16 : 0);
        const __mmask64 extent = pair ? 0xFFFFFFFFFULL : 0x3FFFFULL;
        __m512i scaleWords[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma clang loop unroll(full)
        for (int i = 0; i < ROWS32_TILE; i++) {
            const uint8_t *p = tile.row[i];
            if (T == 1) _mm_prefetch((const char *)(p + b * 18 + KILN_TILE_PREFETCH_AHEAD), _MM_HINT_T1);
            const __m512i x = _mm512_maskz_loadu_epi8(extent, p + b * 18);
            __m512i u = _mm512_permutexvar_epi8(pick, x);
            u = _mm512_and_si512(_mm512_mask_srli_epi16(u, 0xFFFF0000u, u, 4), low4);
            scaleWords[i & 3] = _mm512_or_si512(scaleWords[i & 3], _mm512_maskz_permutexvar_epi16(3u << (2 * i), scalePick, x));
            if (iq4) u = _mm512_shuffle_epi8(grid, u);
            for (int j = 0; j < T; j++) d[j][i] = _mm512_dpbusd_epi32(off[j], u, av[j]);
        }
        const __m512i scalesBoth = _mm512_or_si512(_mm512_or_si512(scaleWords[0], scaleWords[1]), _mm512_or_si512(scaleWords[2], scaleWords[3]));
        const __m512 dw0 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(scalesBoth));
        const __m512 dw1 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(scalesBoth, 16)));
#else
#pragma clang loop unroll(full)
        for (int i = 0; i < ROWS32_TILE; i++) {
            const uint8_t *p = tile.row[i];
            if (T == 1) _mm_prefetch((const char *)(p + b * 18 + KILN_TILE_PREFETCH_AHEAD), _MM_HINT_T1);
            const __m256i both = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(p + b1 * 18 + 2)),
                                                  _mm_loadu_si128((const __m128i *)(p + b * 18 + 2)));
            __m512i u = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(both), _mm256_srli_epi16(both, 4), 1), low4);
            if (iq4) u = _mm512_shuffle_epi8(grid, u);
            for (int j = 0; j < T; j++) d[j][i] = _mm512_dpbusd_epi32(off[j], u, av[j]);
        }
        const __m512 dw0 = row_scales16(&tile, b * 18);
        const __m512 dw1 = pair ? row_scales16(&tile, b1 * 18) : dw0;
#endif
        for (int j = 0; j < T; j++) {
            __m512i first, second;
            kiln_reduce_interleaved16(d[j], &first, &second);  // block b's and b + 1's sums per row
            const int64_t block = (t + j) * blockCount + b;
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(first), _mm512_mul_ps(dw0, _mm512_set1_ps(a.scales[block])), acc[j]);
            if (pair) acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(second), _mm512_mul_ps(dw1, _mm512_set1_ps(a.scales[block + 1])), acc[j]);
        }
    }
    for (int j = 0; j < T; j++) _mm512_mask_storeu_ps(out + (t + j) * outStride + r0, (__mmask16)((1u << R) - 1), acc[j]);
}

static void rows32_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t rowBegin, int64_t rowEnd,
                        int64_t blockCount, KilnQ8Activations a, int64_t tokenCount, float *out, int64_t outStride) {
    const int iq4 = type == KILN_QTYPE_IQ4_NL;
    const int32_t *offsets = kiln_offset_sums(a.values, tokenCount * blockCount * KILN_QK, iq4 ? 128 : 8);
    if (!offsets) {
        kiln_quant_matmul_exact(type, base, rowBytes, rowBegin, rowEnd - rowBegin, blockCount, a, 0, tokenCount, out, outStride);
        return;
    }
    for (int64_t r0 = rowBegin; r0 < rowEnd; r0 += ROWS32_TILE) {
        const int R = rowEnd - r0 < ROWS32_TILE ? (int)(rowEnd - r0) : ROWS32_TILE;
        for (int64_t t = 0; t < tokenCount; t += 4) {
            const int T = tokenCount - t < 4 ? (int)(tokenCount - t) : 4;
            const int32_t *o = offsets + t * blockCount * 8;
#define ROWS32_CASE(IQ4)                                                                                           \
    switch (T) {                                                                                                   \
    case 1: rows32_tile(IQ4, 1, base, rowBytes, r0, R, blockCount, a, t, o, out, outStride); break;                \
    case 2: rows32_tile(IQ4, 2, base, rowBytes, r0, R, blockCount, a, t, o, out, outStride); break;                \
    case 3: rows32_tile(IQ4, 3, base, rowBytes, r0, R, blockCount, a, t, o, out, outStride); break;                \
    default: rows32_tile(IQ4, 4, base, rowBytes, r0, R, blockCount, a, t, o, out, outStride); break;               \
    }
            if (iq4) { ROWS32_CASE(1) } else { ROWS32_CASE(0) }
#undef ROWS32_CASE
        }
    }
}
#endif  // KILN_VNNI

float kiln_quant_dot(int type, const void *weights, KilnQ8Activations a, int64_t row, int64_t blockCount) {
    float sum = 0.0f;
    if (type == KILN_QTYPE_F16 || type == KILN_QTYPE_BF16) {
        kiln_half_matmul(type, (const uint8_t *)weights, 0, 0, 1, 1, blockCount * 32, a, row, 1, &sum, 0);
        return sum;
    }
#if KILN_VNNI
    if (type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q8_0 || type == KILN_QTYPE_Q5_0 || type == KILN_QTYPE_Q5_1) {
        // A one-row "matrix"; outStride 0 sends the result for token `row` to index 0.
        tile_vnni(type, (const uint8_t *)weights, 0, 0, 1, blockCount, a, row, 1, NULL, &sum, 0);
        return sum;
    }
#endif
    kiln_quant_matmul_exact(type, (const uint8_t *)weights, 0, 0, 1, blockCount, a, row, 1, &sum, 0);
    return sum;
}

// Tiles of four weight rows × up to four tokens: every block is widened once per four tokens and
// every activation block loaded once per four rows. Specialized per type so the inner branches
// fold away. The types without a tile (and every type without VNNI) take quant_types.c's exact
// kernels.
#define KILN_MATMUL_BODY(TYPE, FIRST)                                                                \
    for (int64_t r4 = FIRST; r4 < rowEnd; r4 += 4) {                                                 \
        const int R = rowEnd - r4 < 4 ? (int)(rowEnd - r4) : 4;                                      \
        for (int64_t t = 0; t < tokenCount; t += 4) {                                                \
            const int T = tokenCount - t < 4 ? (int)(tokenCount - t) : 4;                            \
            if (R == 4 && T == 4) tile_vnni(TYPE, base, rowBytes, r4, 4, blockCount, a, t, 4, offsets, out, outStride); \
            else if (R == 4 && T == 1) tile_vnni(TYPE, base, rowBytes, r4, 4, blockCount, a, t, 1, offsets, out, outStride); \
            else tile_vnni(TYPE, base, rowBytes, r4, R, blockCount, a, t, T, offsets, out, outStride);        \
        }                                                                                            \
    }

// Batches of four tokens or more: eight-row widened tiles, the rows left over in tile_vnni's.
#define KILN_WIDE_BODY(TYPE)                                                                         \
    for (; r + WIDE_ROWS <= rowEnd; r += WIDE_ROWS) {                                                \
        wide_rows_matmul(TYPE, base, rowBytes, r, blockCount, a, tokenCount, offsets, wide, out, outStride); \
    }                                                                                                \
    KILN_MATMUL_BODY(TYPE, r)

void kiln_quant_matmul(int type, const void *weights, size_t rowBytes, int64_t rowBegin, int64_t rowEnd,
                       int64_t matrixRows, int64_t blockCount, KilnQ8Activations a, int64_t tokenCount,
                       float *out, int64_t outStride) {
    const uint8_t *base = (const uint8_t *)weights;
    switch (type) {
    case KILN_QTYPE_F16:
    case KILN_QTYPE_BF16:
        kiln_half_matmul(type, base, rowBytes, rowBegin, rowEnd, matrixRows, blockCount * 32, a, 0, tokenCount, out, outStride);
        break;
#if KILN_VNNI
    case KILN_QTYPE_Q4_1:
    case KILN_QTYPE_Q8_0:
    case KILN_QTYPE_Q5_0:
    case KILN_QTYPE_Q5_1:
        // One token, or a decoding step of a few sequences: the weights are read once for up to four tokens at a
        // time, each token's products as it gets them alone.
        if (tokenCount <= KILN_DECODE_STEP_TOKENS) {
            lanes32_decode_tokens(type, base, rowBytes, rowBegin, rowEnd, blockCount, a, tokenCount, out, outStride);
            break;
        }
        const int32_t *offsets = NULL;
        if (type == KILN_QTYPE_Q5_0 || type == KILN_QTYPE_Q8_0) {
            // NULL when the buffer cannot be had: the tiles then transfer signs instead.
            offsets = kiln_offset_sums(a.values, tokenCount * blockCount * KILN_QK, type == KILN_QTYPE_Q8_0 ? 128 : 16);
        }
        WideRows wide;
        int64_t r = rowBegin;
        if (tokenCount >= 4 && (offsets || type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q5_1) &&
            wide_rows_scratch(blockCount, &wide)) {
            switch (type) {
            case KILN_QTYPE_Q4_1: KILN_WIDE_BODY(KILN_QTYPE_Q4_1) break;
            case KILN_QTYPE_Q8_0: KILN_WIDE_BODY(KILN_QTYPE_Q8_0) break;
            case KILN_QTYPE_Q5_0: KILN_WIDE_BODY(KILN_QTYPE_Q5_0) break;
            default: KILN_WIDE_BODY(KILN_QTYPE_Q5_1) break;
            }
            break;
        }
        switch (type) {
        case KILN_QTYPE_Q4_1: KILN_MATMUL_BODY(KILN_QTYPE_Q4_1, rowBegin) break;
        case KILN_QTYPE_Q8_0: KILN_MATMUL_BODY(KILN_QTYPE_Q8_0, rowBegin) break;
        case KILN_QTYPE_Q5_0: KILN_MATMUL_BODY(KILN_QTYPE_Q5_0, rowBegin) break;
        default: KILN_MATMUL_BODY(KILN_QTYPE_Q5_1, rowBegin) break;
        }
        break;
    case KILN_QTYPE_Q4_0:
    case KILN_QTYPE_IQ4_NL: rows32_vnni(type, base, rowBytes, rowBegin, rowEnd, blockCount, a, tokenCount, out, outStride); break;
#endif
    default:
        kiln_quant_matmul_exact(type, base, rowBytes, rowBegin, rowEnd - rowBegin, blockCount, a, 0, tokenCount, out,
                                outStride);
        break;
    }
}

double kiln_int8_dot_peak_probe(int64_t iterations) {
#if KILN_VNNI
    __m512i acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm512_set1_epi32(i);
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int64_t n = 0; n < iterations; n++) {
        for (int i = 0; i < 8; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]));
    }
    __m512i total = acc[0];
    for (int i = 1; i < 8; i++) total = _mm512_add_epi32(total, acc[i]);
    volatile int sink = _mm512_reduce_add_epi32(total);
    (void)sink;
    return (double)iterations * 8 * 64 * 2;
#else
    (void)iterations;
    return 0;
#endif
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
