import CKilnKernels
import Glibc

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

    /// Soft-capping, out[i] = c·tanh(x[i]·(1/c)) in ggml's three steps (scale by the f32
    /// reciprocal, libm's tanhf, scale by c): Gemma 2's logits. `out` may be `x`.
    public static func softCap(
        _ x: UnsafeBufferPointer<Float>, cap: Float, into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        let inverse = 1 / cap
        for i in 0..<count { out[i] = tanhf(x[i] * inverse) * cap }
    }

    /// GELU-tanh gate in llama.cpp's steps, the Gemma feed-forward's elementwise step:
    /// out[i] = gelu(gate[i]) · up[i], where gelu is 0 at or below −10, the identity at or above 10,
    /// and between them a table over f16 inputs: gate rounds to f16, the table holds
    /// f16(gelu_tanh(that value)). The rounding makes the result differ from the exact formula by
    /// up to 2⁻¹¹ relative, so only these steps reproduce llama.cpp's floats. `out` may be `gate`.
    public static func gegluHalfTable(
        gate: UnsafeBufferPointer<Float>, up: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        requireCount(gate.count, atLeast: count, "gate")
        requireCount(up.count, atLeast: count, "up")
        requireCount(out.count, atLeast: count, "out")
        let table = HalfGELUTable.values
        table.withUnsafeBufferPointer { table in
            for i in 0..<count {
                let x = gate[i]
                if x <= -10 {
                    out[i] = 0
                } else if x >= 10 {
                    out[i] = x * up[i]
                } else {
                    out[i] = Float(table[Int(Float16(x).bitPattern)]) * up[i]
                }
            }
        }
    }

}

enum SiLU: UnaryVectorFunction {
    @_transparent static func apply(_ v: Vector16) -> Vector16 { v / (1 + exp16(-v)) }
}

enum SwiGLU: BinaryVectorFunction {
    @_transparent static func apply(_ g: Vector16, _ u: Vector16) -> Vector16 { g / (1 + exp16(-g)) * u }
}

/// f16(gelu_tanh(h)) for every f16 bit pattern h, the constants and the fused multiply-add of
/// llama.cpp's table (ggml_gelu_f32 as its compiler builds it) — built once, 128 KiB.
enum HalfGELUTable {
    static let values: [Float16] = (0..<65536).map { bits in
        let f = Float(Float16(bitPattern: UInt16(bits)))
        return Float16(gelu(f))
    }

    static func gelu(_ f: Float) -> Float {
        // 1 + a·f·f as one fused multiply-add: the compiler contracts it so in llama.cpp's build,
        // and one table entry (f16 0xBFFF, −1.999) rounds differently without it.
        let inner: Float = 0.797_884_560_802_865_355_879_892_119_868_76 * f * Float(1).addingProduct(0.044_715 * f, f)
        return 0.5 * f * (1 + tanhf(inner))
    }
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
