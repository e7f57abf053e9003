/// Which formula a GELU uses: BERT checkpoints use the exact erf form, GPT-2-style models the
/// tanh approximation.
public enum GELUApproximation: Sendable {
    case erf
    case tanh
}

extension VectorOps {
    /// SiLU (swish): out[i] = x[i] / (1 + e^(−x[i])). `out` may be `x`.
    public static func silu(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        unary(x, out, count) { v in v / (1 + exp16(-v)) }
    }

    /// SwiGLU gate: out[i] = silu(gate[i]) · up[i] — the Llama feed-forward's elementwise step.
    public static func swiglu(
        gate: UnsafeBufferPointer<Float>, up: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        binary(gate, up, out, count) { g, u in g / (1 + exp16(-g)) * u } scalar: { g, u in
            let e = exp16(Vector16(repeating: -g))[0]
            return g / (1 + e) * u
        }
    }

    /// GELU, exact (`.erf`: x·Φ(x)) or the tanh approximation. `out` may be `x`.
    public static func gelu(
        _ x: UnsafeBufferPointer<Float>, approximation: GELUApproximation,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        switch approximation {
        case .erf:
            unary(x, out, count) { v in 0.5 * v * (1 + erf16(v * 0.707_106_781)) }
        case .tanh:
            unary(x, out, count) { v in
                let inner = 0.797_884_56 * (v + 0.044_715 * v * v * v)
                return 0.5 * v * (1 + tanh16(inner))
            }
        }
    }

    /// Applies a 16-lane function to x[0..<count]; the tail goes through one padded vector so each
    /// element sees the same arithmetic wherever it sits.
    @inline(__always)
    static func unary(
        _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableBufferPointer<Float>, _ count: Int,
        kernel: StaticString = #function, _ body: (Vector16) -> Vector16
    ) {
        requireCount(x.count, atLeast: count, "x", kernel: kernel)
        requireCount(out.count, atLeast: count, "out", kernel: kernel)
        guard count > 0 else { return }
        let x = x.baseAddress!, o = out.baseAddress!
        var i = 0
        while i + 16 <= count {
            o.store16(body(x.load16(i)), at: i)
            i += 16
        }
        if i < count {
            var tail = Vector16()
            for k in 0..<(count - i) { tail[k] = x[i + k] }
            let r = body(tail)
            for k in 0..<(count - i) { o[i + k] = r[k] }
        }
    }
}

/// tanh through e^(2x): 1 − 2/(e^(2x)+1), absolute error ≈ 1e-7.
@inline(__always)
func tanh16(_ x: Vector16) -> Vector16 {
    let clamped = x.clamped(lowerBound: Vector16(repeating: -15), upperBound: Vector16(repeating: 15))
    return 1 - 2 / (exp16(2 * clamped) + 1)
}

/// erf by Abramowitz–Stegun 7.1.26 (absolute error ≤ 1.5e-7), odd-extended.
@inline(__always)
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
