import Foundation

/// Plain scalar twins of the kernels: the obvious loop, in Double where it matters, no SIMD, no
/// threads, no tiling. Tests compare each fast kernel against its twin; benchmarks use them as
/// the naive baseline.
public enum Reference {
    public static func add(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { $0 + $1 } }
    public static func mul(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { $0 * $1 } }
    public static func scale(_ x: [Float], by alpha: Float) -> [Float] { x.map { alpha * $0 } }
    public static func axpy(_ alpha: Float, _ x: [Float], _ y: [Float]) -> [Float] { zip(x, y).map { $1 + alpha * $0 } }

    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var sum = 0.0
        for i in a.indices { sum += Double(a[i]) * Double(b[i]) }
        return Float(sum)
    }

    public static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        guard m > -Float.infinity else { return x.map { _ in 0 } }
        let e = x.map { Foundation.exp(Double($0) - Double(m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    public static func rmsNorm(_ x: [Float], weight: [Float]?, epsilon: Float) -> [Float] {
        let meanSquare = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        let inverse = 1 / (meanSquare + Double(epsilon)).squareRoot()
        return x.indices.map { i in Float(Double(x[i]) * inverse * Double(weight?[i] ?? 1)) }
    }

    public static func layerNorm(_ x: [Float], weight: [Float]?, bias: [Float]?, epsilon: Float) -> [Float] {
        let n = Double(x.count)
        let mean = x.reduce(0.0) { $0 + Double($1) } / n
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let inverse = 1 / (variance + Double(epsilon)).squareRoot()
        return x.indices.map { i in
            Float((Double(x[i]) - mean) * inverse * Double(weight?[i] ?? 1) + Double(bias?[i] ?? 0))
        }
    }

    public static func silu(_ x: [Float]) -> [Float] { x.map { Float(Double($0) / (1 + Foundation.exp(-Double($0)))) } }

    public static func swiglu(gate: [Float], up: [Float]) -> [Float] {
        zip(gate, up).map { g, u in Float(Double(g) / (1 + Foundation.exp(-Double(g))) * Double(u)) }
    }

    public static func gelu(_ x: [Float], approximation: GELUApproximation) -> [Float] {
        x.map { v in
            let d = Double(v)
            switch approximation {
            case .erf: return Float(0.5 * d * (1 + Foundation.erf(d / 2.0.squareRoot())))
            case .tanh: return Float(0.5 * d * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
            }
        }
    }

    /// Rotary embedding with angles position·base^(−2i/rotaryDimension) computed directly in Double.
    public static func rope(
        _ x: [Float], headCount: Int, headDimension: Int, rotaryDimension: Int, position: Int, base: Float,
        pairing: RoPEPairing
    ) -> [Float] {
        var out = x
        let half = rotaryDimension / 2
        for h in 0..<headCount {
            for i in 0..<half {
                let theta = Double(position) * Foundation.pow(Double(base), -2 * Double(i) / Double(rotaryDimension))
                let (a, b) = pairing == .adjacent ? (2 * i, 2 * i + 1) : (i, i + half)
                let x0 = Double(x[h * headDimension + a]), x1 = Double(x[h * headDimension + b])
                out[h * headDimension + a] = Float(x0 * Foundation.cos(theta) - x1 * Foundation.sin(theta))
                out[h * headDimension + b] = Float(x0 * Foundation.sin(theta) + x1 * Foundation.cos(theta))
            }
        }
        return out
    }

    public static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] || (x[best].isNaN && !x[i].isNaN) { best = i }
        return best
    }

    /// The k largest (value descending, index ascending on ties), NaN excluded.
    public static func topK(_ x: [Float], k: Int) -> [(index: Int, value: Float)] {
        let sorted = x.enumerated().filter { !$0.element.isNaN }.sorted {
            $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset)
        }
        return sorted.prefix(k).map { ($0.offset, $0.element) }
    }

    /// C = alpha·op(A)·op(B) + beta·C in Double, row-major with leading dimensions.
    public static func gemm(
        transposeA: Transpose, transposeB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
        a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int
    ) -> [Float] {
        var out = c
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let av = transposeA == .none ? a[i * lda + p] : a[p * lda + i]
                    let bv = transposeB == .none ? b[p * ldb + j] : b[j * ldb + p]
                    sum += Double(av) * Double(bv)
                }
                out[i * ldc + j] = Float(Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])))
            }
        }
        return out
    }
}
