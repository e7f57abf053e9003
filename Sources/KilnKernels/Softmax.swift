extension VectorOps {
    /// Numerically stable softmax: out[i] = e^(x[i] − max) / Σ e^(x[j] − max) for i < count.
    /// `out` may be the same memory as `x`. Entries of −∞ get probability 0; a row that is all −∞
    /// becomes all zeros rather than NaN.
    public static func softmax(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        guard count > 0 else { return }
        let x = x.baseAddress!, o = out.baseAddress!
        let maximum = maxUnchecked(x, count)
        guard maximum > -Float.infinity else {
            o.update(repeating: 0, count: count)
            return
        }
        let total = expShiftedUnchecked(x, o, count, shift: maximum)
        scaleUnchecked(o, 1 / total, count)
    }

    /// The largest of x[0..<count] (−∞ for count 0); NaN entries are ignored.
    public static func maximum(_ x: UnsafeBufferPointer<Float>, count: Int) -> Float {
        requireCount(x.count, atLeast: count, "x")
        guard count > 0 else { return -.infinity }
        return maxUnchecked(x.baseAddress!, count)
    }
}

@inline(__always)
func maxUnchecked(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var i = 0
    var m = Vector16(repeating: -.infinity)
    while i + 16 <= count {
        m = vectorMax(m, x.load16(i))
        i += 16
    }
    var result = horizontalMax(m)
    while i < count {
        result = Swift.max(result, x[i])
        i += 1
    }
    return result
}

/// o[i] = e^(x[i] − shift); returns Σ o[i].
@inline(__always)
func expShiftedUnchecked(_ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ count: Int, shift: Float) -> Float {
    var i = 0
    var sum = Vector16()
    while i + 16 <= count {
        let e = exp16(x.load16(i) - shift)
        o.store16(e, at: i)
        sum += e
        i += 16
    }
    var total = horizontalSum(sum)
    if i < count {
        // Tail through a masked vector so every element uses the same polynomial.
        var tail = Vector16(repeating: -.infinity)
        for k in 0..<(count - i) { tail[k] = x[i + k] - shift }
        let e = exp16(tail)
        for k in 0..<(count - i) {
            o[i + k] = e[k]
            total += e[k]
        }
    }
    return total
}

extension VectorOps {
    /// out[i] = e^x[i] for x[i] ≤ 0 by the lean exponential the materialized attention's softmax
    /// uses (x < −87.3, −∞ included, gives 0). `out` may be `x`.
    public static func expOfNonPositive(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        var i = 0
        while i < count {
            var lanes = Vector16(repeating: -.infinity)
            for k in 0..<min(16, count - i) { lanes[k] = x[i + k] }
            let e = expNonPositive16(lanes)
            for k in 0..<min(16, count - i) { out[i + k] = e[k] }
            i += 16
        }
    }
}
