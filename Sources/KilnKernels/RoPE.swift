#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How rotary embedding pairs up the dimensions of a head.
public enum RoPEPairing: Sendable {
    /// Dimensions (2i, 2i+1) rotate together — llama.cpp's "normal" mode (Llama GGUF files).
    case adjacent
    /// Dimensions (i, i + rotaryDimension/2) rotate together — the NeoX / Hugging Face layout.
    case halfSplit
}

extension VectorOps {
    /// Fills cos[i], sin[i] for i < rotaryDimension/2 with the angle position·base^(−2i/rotaryDimension),
    /// divided by `frequencyFactors[i]` when given (Llama 3's rope_freqs).
    ///
    /// The angle is advanced by repeated multiplication in Float, as ggml does, so positions match
    /// llama.cpp's rotation to the last bit rather than only to rounding.
    public static func ropeAngles(
        position: Int, rotaryDimension: Int, base: Float,
        cos: UnsafeMutableBufferPointer<Float>, sin: UnsafeMutableBufferPointer<Float>,
        frequencyFactors: UnsafeBufferPointer<Float>? = nil
    ) {
        kernelRequire(rotaryDimension > 0 && rotaryDimension % 2 == 0, "rotaryDimension must be positive and even, got \(rotaryDimension)")
        kernelRequire(base > 0, "base must be positive, got \(base)")
        kernelRequire(position >= 0, "position must be non-negative, got \(position)")
        let half = rotaryDimension / 2
        requireCount(cos.count, atLeast: half, "cos")
        requireCount(sin.count, atLeast: half, "sin")
        if let frequencyFactors { requireCount(frequencyFactors.count, atLeast: half, "frequencyFactors") }
        let thetaScale = powf(base, -2 / Float(rotaryDimension))
        var theta = Float(position)
        for i in 0..<half {
            let angle = frequencyFactors.map { theta / $0[i] } ?? theta
            cos[i] = cosf(angle)
            sin[i] = sinf(angle)
            theta *= thetaScale
        }
    }

    /// Rotates every head of x ([headCount, headDimension], row-major) in place by the angles from
    /// `ropeAngles`. Dimensions from rotaryDimension to headDimension pass through unchanged.
    /// Each rotated value is one FMA over one rounded product — x0·cos − (x1·sin) and
    /// x0·sin + (x1·cos) — the contraction llama.cpp's compiled CPU code performs.
    public static func applyRoPE(
        _ x: UnsafeMutableBufferPointer<Float>, headCount: Int, headDimension: Int, rotaryDimension: Int,
        cos: UnsafeBufferPointer<Float>, sin: UnsafeBufferPointer<Float>, pairing: RoPEPairing
    ) {
        requirePositive(headDimension, "headDimension")
        kernelRequire(headCount >= 0, "headCount must be non-negative, got \(headCount)")
        kernelRequire(rotaryDimension > 0 && rotaryDimension % 2 == 0 && rotaryDimension <= headDimension,
                      "rotaryDimension \(rotaryDimension) must be even and in 2...\(headDimension)")
        requireCount(x.count, atLeast: headCount * headDimension, "x")
        let half = rotaryDimension / 2
        requireCount(cos.count, atLeast: half, "cos")
        requireCount(sin.count, atLeast: half, "sin")
        let p = x.baseAddress!, c = cos.baseAddress!, s = sin.baseAddress!
        for h in 0..<headCount {
            let head = p + h * headDimension
            switch pairing {
            case .adjacent:
                for i in 0..<half {
                    let x0 = head[2 * i], x1 = head[2 * i + 1]
                    head[2 * i] = (-(x1 * s[i])).addingProduct(x0, c[i])
                    head[2 * i + 1] = (x1 * c[i]).addingProduct(x0, s[i])
                }
            case .halfSplit:
                for i in 0..<half {
                    let x0 = head[i], x1 = head[i + half]
                    head[i] = (-(x1 * s[i])).addingProduct(x0, c[i])
                    head[i + half] = (x1 * c[i]).addingProduct(x0, s[i])
                }
            }
        }
    }
}
