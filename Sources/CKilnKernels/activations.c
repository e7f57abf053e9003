#include "kiln_activations.h"
#include <math.h>

// erf(a) for a ≥ 0 is 1 − t·P(t)·e^(−a²) with t = 1/(1 + p·a) (Abramowitz–Stegun 7.1.26).
#define AS_P 0.3275911f
#define AS_A1 0.254829592f
#define AS_A2 -0.284496736f
#define AS_A3 1.421413741f
#define AS_A4 -1.453152027f
#define AS_A5 1.061405429f

static inline float gelu_erf_scalar(float v) {
    float a = fminf(fabsf(v) * 0.70710678f, 10.0f);
    float t = 1.0f / (1.0f + AS_P * a);
    float p = ((((AS_A5 * t + AS_A4) * t + AS_A3) * t + AS_A2) * t + AS_A1) * t;
    float erf = 1.0f - p * expf(-a * a);
    return 0.5f * v * (1.0f + (v < 0 ? -erf : erf));
}

#if defined(__AVX512F__)
#include <immintrin.h>

// e^x for x ≤ 0: x = n·ln2 + r, |r| ≤ ln2/2, e^r by a degree-6 polynomial, 2ⁿ by vscalefps
// (which also flushes very negative x to 0 without a range check).
static inline __m512 exp_nonpositive(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 gelu_erf16(__m512 v) {
    const __m512 one = _mm512_set1_ps(1.0f);
    // |x/√2| capped at 10, where erf is 1 in float, so infinite inputs still give ±∞·(0 or 1).
    __m512 a = _mm512_min_ps(_mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(0.70710678f)), _mm512_set1_ps(10.0f));
    __m512 d = _mm512_fmadd_ps(_mm512_set1_ps(AS_P), a, one);
    // 1/d from the 14-bit estimate and one Newton step (relative error ~2⁻²⁸), instead of a divide.
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));
    __m512 p = _mm512_set1_ps(AS_A5);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(AS_A4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(AS_A3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(AS_A2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(AS_A1));
    p = _mm512_mul_ps(p, t);
    __m512 erf = _mm512_fnmadd_ps(p, exp_nonpositive(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), a), a)), one);
    // erf is odd: flip the sign bit of erf where v is negative.
    __m512 sign = _mm512_and_ps(v, _mm512_set1_ps(-0.0f));
    erf = _mm512_xor_ps(erf, sign);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(one, erf));
}

void kiln_gelu_erf(const float *x, float *out, long count) {
    long i = 0;
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(out + i, gelu_erf16(_mm512_loadu_ps(x + i)));
    if (i < count) {
        __mmask16 m = (__mmask16)((1u << (count - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, gelu_erf16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

#else

void kiln_gelu_erf(const float *x, float *out, long count) {
    for (long i = 0; i < count; i++) out[i] = gelu_erf_scalar(x[i]);
}

#endif
