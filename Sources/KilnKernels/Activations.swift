import CKilnKernels

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
        case .erf:
            // In C: the reciprocal estimate (vrcp14ps) replaces a divide that cost as much as the rest.
            requireCount(x.count, atLeast: count, "x")
            requireCount(out.count, atLeast: count, "out")
            guard count > 0 else { return }
            kiln_gelu_erf(x.baseAddress!, out.baseAddress!, count)
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
