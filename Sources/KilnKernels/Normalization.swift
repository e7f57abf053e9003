extension VectorOps {
    /// RMSNorm as Llama uses it: out[i] = x[i] / √(mean(x²) + epsilon) · weight[i].
    /// `weight` may be nil (no gain). `out` may be `x`.
    public static func rmsNorm(
        _ x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>?, epsilon: Float,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        requirePositive(count, "count")
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        if let weight { requireCount(weight.count, atLeast: count, "weight") }
        let x = x.baseAddress!, o = out.baseAddress!
        // Squares rounded to Float, then summed in Double one after another, as ggml does, so the
        // mean rounds to the same Float as llama.cpp's.
        var sum = 0.0
        for i in 0..<count { sum += Double(x[i] * x[i]) }
        let meanSquare = Float(sum / Double(count))
        let inverse = 1 / (meanSquare + epsilon).squareRoot()
        affine(x, o, count, shift: 0, scale: inverse, weight: weight?.baseAddress, bias: nil)
    }

    /// LayerNorm: out[i] = (x[i] − mean) / √(var + epsilon) · weight[i] + bias[i] with the biased
    /// variance (as PyTorch and BERT). `weight`/`bias` may be nil. `out` may be `x`.
    public static func layerNorm(
        _ x: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>?, bias: UnsafeBufferPointer<Float>?,
        epsilon: Float, into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        requirePositive(count, "count")
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        if let weight { requireCount(weight.count, atLeast: count, "weight") }
        if let bias { requireCount(bias.count, atLeast: count, "bias") }
        let x = x.baseAddress!, o = out.baseAddress!
        var i = 0
        var s = Vector16()
        while i + 16 <= count {
            s += x.load16(i)
            i += 16
        }
        var sum = horizontalSum(s)
        while i < count {
            sum += x[i]
            i += 1
        }
        let mean = sum / Float(count)
        // Two-pass variance: stable when the mean is large relative to the spread.
        i = 0
        var v = Vector16()
        while i + 16 <= count {
            let d = x.load16(i) - mean
            v.addProduct(d, d)
            i += 16
        }
        var variance = horizontalSum(v)
        while i < count {
            let d = x[i] - mean
            variance += d * d
            i += 1
        }
        variance /= Float(count)
        let inverse = 1 / (variance + epsilon).squareRoot()
        affine(x, o, count, shift: mean, scale: inverse, weight: weight?.baseAddress, bias: bias?.baseAddress)
    }

    /// o[i] = (x[i] − shift)·scale·weight[i] + bias[i].
    @inline(__always)
    static func affine(
        _ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ count: Int, shift: Float, scale: Float,
        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?
    ) {
        var i = 0
        while i + 16 <= count {
            var v = (x.load16(i) - shift) * scale
            if let weight { v *= weight.load16(i) }
            if let bias { v += bias.load16(i) }
            o.store16(v, at: i)
            i += 16
        }
        while i < count {
            var v = (x[i] - shift) * scale
            if let weight { v *= weight[i] }
            if let bias { v += bias[i] }
            o[i] = v
            i += 1
        }
    }
}
