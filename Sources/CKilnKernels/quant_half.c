// Products of F16 and BF16 weights, in the order llama.cpp's AVX-512 CPU backend sums them.
//
// llama.cpp converts the activations to the weights' type (f16 rounding to nearest even; bf16 as
// the AVX512-BF16 converter does, input denormals as zero, the tail of a row past a multiple of
// 32 in software) and then takes one of two routes:
//  - one token (decode): ggml_vec_dot_f16 / _bf16. F16: four accumulators of 16 lanes over steps
//    of 64, folded 0+2, 1+3, then 0+1, and reduced; BF16: two accumulators of dpbf16 over steps
//    of 64 (32 pairs each), each reduced and the two added in double. Leftovers past the last
//    full step are added in double, one product at a time.
//  - two or more tokens (prefill): llamafile's tinyBLAS, one 16-lane accumulator per output over
//    the whole row (F16: an FMA per 16 weights; BF16: a dpbf16 per 32), then reduced; unless the
//    matrix's rows are not a multiple of 4 or its row length one of 16 / 32, when llama.cpp falls
//    back to vec_dot for every token.
// The reduction is GCC's _mm512_reduce_add_ps: lanes i + 8 onto i, then i + 4, then
// (0 + 2) + (1 + 3). dpbf16 adds, per lane, the odd pair's product and then the even pair's, each
// rounded to f32, with bf16 denormals read as zero and denormal results flushed to zero.
//
// The AVX-512 paths use the same instructions; the portable path spells the same order out.
#include <math.h>

#include "quant_internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bf16_value(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

static inline float bf16_value_daz(uint16_t h) { return (h & 0x7F80) == 0 ? f32_from_bits((uint32_t)(h & 0x8000) << 16) : bf16_value(h); }

static inline float flush_denormal(float f) {
    const uint32_t u = bits_of(f);
    return (u & 0x7F800000) == 0 ? f32_from_bits(u & 0x80000000) : f;
}

// GCC's _mm512_reduce_add_ps order.
static inline float reduce16(const float *x) {
    float t[8], u[4];
    for (int i = 0; i < 8; i++) t[i] = x[i + 8] + x[i];
    for (int i = 0; i < 4; i++) u[i] = t[i + 4] + t[i];
    return (u[0] + u[2]) + (u[1] + u[3]);
}

#if defined(__AVX512F__)
static inline float reduce16_v(__m512 v) {
    float x[16];
    _mm512_storeu_ps(x, v);
    return reduce16(x);
}
#endif

// One lane of dpbf16: acc + odd product, then + even product.
static inline float dpbf16_lane(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1) {
    acc = flush_denormal(acc + bf16_value_daz(a1) * bf16_value_daz(b1));
    return flush_denormal(acc + bf16_value_daz(a0) * bf16_value_daz(b0));
}

// ---- activation conversion ------------------------------------------------------------------

static inline uint16_t bf16_round(float f, int flushDenormals) {
    uint32_t u = bits_of(f);
    if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((u >> 16) | 64);
    if (flushDenormals && (u & 0x7F800000) == 0) u &= 0x80000000;
    return (uint16_t)((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
}

void kiln_convert_half_activations(const float *x, int64_t count, uint16_t *half, uint16_t *bfloat) {
    if (half) {
        int64_t i = 0;
#if defined(__AVX512F__)
        for (; i + 16 <= count; i += 16) {
            _mm256_storeu_si256((__m256i *)(half + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
        }
#endif
        for (; i < count; i++) half[i] = kiln_f32_to_f16_exact(x[i]);
    }
    if (bfloat) {
        const int64_t vectorized = count - count % 32;
        for (int64_t i = 0; i < count; i++) bfloat[i] = bf16_round(x[i], i < vectorized);
    }
}

// ---- one token ------------------------------------------------------------------------------

static float dot_f16_single(const uint16_t *w, const uint16_t *a, int64_t n) {
    const int64_t np = n & ~(int64_t)63;
    float total;
#if defined(__AVX512F__)
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < np; i += 64) {
        for (int j = 0; j < 4; j++) {
            const __m512 wv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 16 * j)));
            const __m512 av = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + i + 16 * j)));
            s[j] = _mm512_fmadd_ps(wv, av, s[j]);
        }
    }
    total = reduce16_v(_mm512_add_ps(_mm512_add_ps(s[0], s[2]), _mm512_add_ps(s[1], s[3])));
#else
    float s[4][16] = {{0}};
    for (int64_t i = 0; i < np; i += 64) {
        for (int j = 0; j < 4; j++) {
            for (int l = 0; l < 16; l++) {
                const int64_t e = i + 16 * j + l;
                s[j][l] = fmaf(kiln_f16_to_f32_scalar(w[e]), kiln_f16_to_f32_scalar(a[e]), s[j][l]);
            }
        }
    }
    float folded[16];
    for (int l = 0; l < 16; l++) folded[l] = (s[0][l] + s[2][l]) + (s[1][l] + s[3][l]);
    total = reduce16(folded);
#endif
    double sum = total;
    for (int64_t i = np; i < n; i++) sum += (double)(kiln_f16_to_f32_scalar(w[i]) * kiln_f16_to_f32_scalar(a[i]));
    return (float)sum;
}

static void dpbf16_span(float *acc, const uint16_t *w, const uint16_t *a) {
    for (int l = 0; l < 16; l++) acc[l] = dpbf16_lane(acc[l], w[2 * l], w[2 * l + 1], a[2 * l], a[2 * l + 1]);
}

static float dot_bf16_single(const uint16_t *w, const uint16_t *a, int64_t n) {
    const int64_t np = n & ~(int64_t)63;
    double sum;
#if defined(__AVX512BF16__)
    __m512 c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
    for (int64_t i = 0; i < np; i += 64) {
        c1 = _mm512_dpbf16_ps(c1, (__m512bh)_mm512_loadu_si512(w + i), (__m512bh)_mm512_loadu_si512(a + i));
        c2 = _mm512_dpbf16_ps(c2, (__m512bh)_mm512_loadu_si512(w + i + 32), (__m512bh)_mm512_loadu_si512(a + i + 32));
    }
    sum = (double)reduce16_v(c1);
    sum += (double)reduce16_v(c2);
#else
    float c1[16] = {0}, c2[16] = {0};
    for (int64_t i = 0; i < np; i += 64) {
        dpbf16_span(c1, w + i, a + i);
        dpbf16_span(c2, w + i + 32, a + i + 32);
    }
    sum = (double)reduce16(c1);
    sum += (double)reduce16(c2);
#endif
    for (int64_t i = np; i < n; i++) sum += (double)(bf16_value(w[i]) * bf16_value(a[i]));
    return (float)sum;
}

// ---- several tokens (tinyBLAS) --------------------------------------------------------------

static float dot_f16_batched(const uint16_t *w, const uint16_t *a, int64_t n) {
#if defined(__AVX512F__)
    __m512 acc = _mm512_setzero_ps();
    for (int64_t l = 0; l < n; l += 16) {
        acc = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + l))),
                              _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + l))), acc);
    }
    return reduce16_v(acc);
#else
    float acc[16] = {0};
    for (int64_t l = 0; l < n; l += 16) {
        for (int i = 0; i < 16; i++) acc[i] = fmaf(kiln_f16_to_f32_scalar(w[l + i]), kiln_f16_to_f32_scalar(a[l + i]), acc[i]);
    }
    return reduce16(acc);
#endif
}

static float dot_bf16_batched(const uint16_t *w, const uint16_t *a, int64_t n) {
#if defined(__AVX512BF16__)
    __m512 acc = _mm512_setzero_ps();
    for (int64_t l = 0; l < n; l += 32) {
        acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(w + l), (__m512bh)_mm512_loadu_si512(a + l));
    }
    return reduce16_v(acc);
#else
    float acc[16] = {0};
    for (int64_t l = 0; l < n; l += 32) dpbf16_span(acc, w + l, a + l);
    return reduce16(acc);
#endif
}

#if defined(__AVX512F__) && defined(__AVX512BF16__)
// tinyBLAS's per-output order for up to 4 rows × 4 tokens at once: each output keeps its own
// accumulator, so the tile only shares loads and overlaps the sixteen FMA chains.
static void half_tile_batched(int bf16, const uint8_t *base, size_t rowBytes, int64_t r0, int R, const uint16_t *x, int64_t t0,
                              int T, int64_t columns, float *out, int64_t outStride) {
    const uint16_t *w[4], *a[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (const uint16_t *)(base + (size_t)(r0 + (i < R ? i : R - 1)) * rowBytes);
        a[i] = x + (t0 + (i < T ? i : T - 1)) * columns;
    }
    __m512 acc[4][4];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
    }
    if (bf16) {
        for (int64_t l = 0; l < columns; l += 32) {
            __m512i wv[4], av[4];
            for (int i = 0; i < 4; i++) {
                wv[i] = _mm512_loadu_si512((const void *)(w[i] + l));
                av[i] = _mm512_loadu_si512((const void *)(a[i] + l));
            }
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv[i], (__m512bh)av[j]);
            }
        }
    } else {
        for (int64_t l = 0; l < columns; l += 16) {
            __m512 wv[4], av[4];
            for (int i = 0; i < 4; i++) {
                wv[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w[i] + l)));
                av[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a[i] + l)));
            }
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) acc[i][j] = _mm512_fmadd_ps(wv[i], av[j], acc[i][j]);
            }
        }
    }
    for (int j = 0; j < T; j++) {
        for (int i = 0; i < R; i++) out[(t0 + j) * outStride + r0 + i] = reduce16_v(acc[i][j]);
    }
}
#endif

void kiln_half_matmul(int type, const uint8_t *base, size_t rowBytes, int64_t rowBegin, int64_t rowEnd, int64_t matrixRows,
                      int64_t columns,
                      KilnQ8Activations a, int64_t firstToken, int64_t tokenCount, float *out, int64_t outStride) {
    const int bf16 = type == KILN_QTYPE_BF16;
    const uint16_t *activations = bf16 ? a.bfloatValues : a.halfValues;
    if (!activations) return;
    // tinyBLAS serves batches whose rows fill its 16- (F16) or 32-weight (BF16) steps, of
    // matrices whose rows fill its 4-row tiles; llama.cpp takes vec_dot for the others.
    const int batched = tokenCount >= 2 && columns % (bf16 ? 32 : 16) == 0 && matrixRows % 4 == 0;
#if defined(__AVX512F__) && defined(__AVX512BF16__)
    if (batched) {
        for (int64_t r0 = rowBegin; r0 < rowEnd; r0 += 4) {
            for (int64_t t0 = 0; t0 < tokenCount; t0 += 4) {
                half_tile_batched(bf16, base, rowBytes, r0, rowEnd - r0 < 4 ? (int)(rowEnd - r0) : 4, activations + firstToken * columns, t0,
                                  tokenCount - t0 < 4 ? (int)(tokenCount - t0) : 4, columns, out, outStride);
            }
        }
        return;
    }
#endif
    for (int64_t t = 0; t < tokenCount; t++) {
        const uint16_t *x = activations + (firstToken + t) * columns;
        for (int64_t r = rowBegin; r < rowEnd; r++) {
            const uint16_t *w = (const uint16_t *)(base + (size_t)r * rowBytes);
            float v;
            if (bf16) v = batched ? dot_bf16_batched(w, x, columns) : dot_bf16_single(w, x, columns);
            else v = batched ? dot_f16_batched(w, x, columns) : dot_f16_single(w, x, columns);
            out[t * outStride + r] = v;
        }
    }
}
