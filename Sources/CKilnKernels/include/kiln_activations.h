// Activations whose fastest form needs instructions Swift cannot spell (AVX-512 reciprocal and
// scale), with a portable path for other CPUs.
#ifndef KILN_ACTIVATIONS_H
#define KILN_ACTIVATIONS_H

/// out[i] = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) for i < count, erf by Abramowitz–Stegun 7.1.26
/// (absolute error ≤ 1.5e-7). `out` may be `x`.
void kiln_gelu_erf(const float *x, float *out, long count);

#endif
