import KilnAutograd
import KilnTestSupport

/// Compares the gradients `backward()` gives for `inputs` with central finite differences of
/// loss = Σ f(inputs) ⊙ r (r fixed random weights, so every output element matters). Returns the
/// worst relative error ‖analytic − numeric‖ / ‖numeric‖ over the inputs.
func gradientError(_ inputs: [Tensor], step: Float = 1e-2, seed: UInt64 = 7, _ f: ([Tensor]) -> Tensor) -> Float {
    var rng = SeededGenerator(seed: seed)
    let probe = f(inputs)
    let r = rng.floats(probe.count)
    func loss() -> Double {
        let y = f(inputs)
        var total: Double = 0
        for i in 0..<y.count { total += Double(y.data[i]) * Double(r[i]) }
        return total
    }
    for t in inputs { t.zeroGradient() }
    (f(inputs) * Tensor(shape: probe.shape, data: r)).sum().backward()
    var worst: Float = 0
    for t in inputs where t.requiresGradient {
        let analytic = t.gradient.isEmpty ? [Float](repeating: 0, count: t.count) : t.gradient
        var numeric = [Double](repeating: 0, count: t.count)
        for i in 0..<t.count {
            let saved = t.data[i]
            t.data[i] = saved + step
            let up = loss()
            t.data[i] = saved - step
            let down = loss()
            t.data[i] = saved
            numeric[i] = (up - down) / Double(2 * step)
        }
        var difference: Double = 0, norm: Double = 0
        for i in 0..<t.count {
            difference += (Double(analytic[i]) - numeric[i]) * (Double(analytic[i]) - numeric[i])
            norm += numeric[i] * numeric[i]
        }
        worst = max(worst, Float((difference / max(norm, 1e-12)).squareRoot()))
    }
    return worst
}

func parameter(_ shape: [Int], _ rng: inout SeededGenerator, scale: Float = 1) -> Tensor {
    Tensor(shape: shape, data: rng.floats(shape.reduce(1, *)).map { $0 * scale }, requiresGradient: true)
}
