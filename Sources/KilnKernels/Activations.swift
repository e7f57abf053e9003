/// Which formula a GELU uses: BERT checkpoints use the exact erf form, GPT-2-style models the
/// tanh approximation.
public enum GELUApproximation: Sendable {
    case erf
    case tanh
}

extension VectorOps {
    /// SiLU (swish): out[i] = x[i] / (1 + e^(−x[i])). `out` may be `x`.
    public static func silu(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        unary(SiLU.self, x, out, count)
    }

    /// SwiGLU gate: out[i] = silu(gate[i]) · up[i] — the Llama feed-forward's elementwise step.
    public static func swiglu(
        gate: UnsafeBufferPointer<Float>, up: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        binary(SwiGLU.self, gate, up, out, count)
    }

    /// GELU, exact (`.erf`: x·Φ(x)) or the tanh approximation. `out` may be `x`.
    public static func gelu(
        _ x: UnsafeBufferPointer<Float>, approximation: GELUApproximation,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        switch approximation {
        case .erf: unary(GELUErf.self, x, out, count)
        case .tanh: unary(GELUTanh.self, x, out, count)
        }
    }

}

enum SiLU: UnaryVectorFunction {
    @_transparent static func apply(_ v: Vector16) -> Vector16 { v / (1 + exp16(-v)) }
}

enum SwiGLU: BinaryVectorFunction {
    @_transparent static func apply(_ g: Vector16, _ u: Vector16) -> Vector16 { g / (1 + exp16(-g)) * u }
}

enum GELUErf: UnaryVectorFunction {
    @_transparent static func apply(_ v: Vector16) -> Vector16 { 0.5 * v * (1 + erf16(v * 0.707_106_781)) }
}

enum GELUTanh: UnaryVectorFunction {
    @_transparent static func apply(_ v: Vector16) -> Vector16 {
        0.5 * v * (1 + tanh16(0.797_884_56 * (v + 0.044_715 * v * v * v)))
    }
}

/// tanh through e^(2x): 1 − 2/(e^(2x)+1), absolute error ≈ 1e-7.
@_transparent
func tanh16(_ x: Vector16) -> Vector16 {
    let clamped = vectorMin(vectorMax(x, Vector16(repeating: -15)), Vector16(repeating: 15))
    return 1 - 2 / (exp16(2 * clamped) + 1)
}

/// erf by Abramowitz–Stegun 7.1.26 (absolute error ≤ 1.5e-7), odd-extended.
@_transparent
func erf16(_ x: Vector16) -> Vector16 {
    let a = abs(x)
    let t = 1 / (1 + 0.327_591_1 * a)
    var p = Vector16(repeating: 1.061_405_429)
    p = p * t - 1.453_152_027
    p = p * t + 1.421_413_741
    p = p * t - 0.284_496_736
    p = p * t + 0.254_829_592
    let y = 1 - p * t * exp16(-(a * a))
    return y.replacing(with: -y, where: x .< 0)
}

@inline(__always)
private func abs(_ x: Vector16) -> Vector16 {
    x.replacing(with: -x, where: x .< 0)
}
