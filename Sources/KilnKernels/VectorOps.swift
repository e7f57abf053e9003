import CKilnKernels
/// Elementwise SIMD kernels over raw float buffers. Every kernel takes explicit input and output
/// buffers, checks their lengths, and handles any length (no multiple-of-16 requirement).
public enum VectorOps {
    /// out[i] = a[i] + b[i] for i < count.
    public static func add(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        binary(Sum.self, a, b, out, count)
    }

    /// out[i] = a[i] · b[i] for i < count.
    public static func mul(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        binary(Product.self, a, b, out, count)
    }

    /// out[i] = alpha · x[i] for i < count (out may be x).
    public static func scale(
        _ x: UnsafeBufferPointer<Float>, by alpha: Float,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        guard count > 0 else { return }
        let x = x.baseAddress!, o = out.baseAddress!
        var i = 0
        while i + 16 <= count {
            o.store16(x.load16(i) * alpha, at: i)
            i += 16
        }
        while i < count {
            o[i] = alpha * x[i]
            i += 1
        }
    }

    /// y[i] += alpha · x[i] for i < count.
    public static func axpy(
        _ alpha: Float, _ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        requireCount(x.count, atLeast: count, "x")
        requireCount(y.count, atLeast: count, "y")
        guard count > 0 else { return }
        axpyUnchecked(alpha, x.baseAddress!, y.baseAddress!, count)
    }

    /// Σ a[i] · b[i] for i < count.
    /// Σ a[i]·b[i] without size checks, for search loops that validated their storage once
    /// (vector search scores millions of pairs per second; a check per call would show).
    @inlinable @inline(__always)
    public static func dotUnchecked(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        KilnKernels.dotUnchecked(a, b, count)
    }

    /// Starts loading `count` floats from `pointer` into the cache (a hint; no effect on results).
    @inlinable @inline(__always)
    public static func prefetch(_ pointer: UnsafePointer<Float>, count: Int) {
        kiln_prefetch(pointer, count * 4)
    }

    /// Σ (a[i] − b[i])² without size checks (see `dotUnchecked`).
    @inlinable @inline(__always)
    public static func squaredDistanceUnchecked(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var i = 0
        var s0 = Vector16(), s1 = Vector16()
        while i + 32 <= count {
            let d0 = a.load16(i) - b.load16(i), d1 = a.load16(i + 16) - b.load16(i + 16)
            s0.addProduct(d0, d0)
            s1.addProduct(d1, d1)
            i += 32
        }
        var total = horizontalSum(s0 + s1)
        while i < count {
            let d = a[i] - b[i]
            total += d * d
            i += 1
        }
        return total
    }

    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, count: Int) -> Float {
        requireCount(a.count, atLeast: count, "a")
        requireCount(b.count, atLeast: count, "b")
        guard count > 0 else { return 0 }
        return KilnKernels.dotUnchecked(a.baseAddress!, b.baseAddress!, count)
    }

    /// out[i] = F(a[i], b[i]); the tail goes through one padded vector so each element sees the
    /// same arithmetic wherever it sits. Generic rather than closure-taking: closures passed to a
    /// helper were compiled out of line with their 16-lane arguments split into 4-lane pieces.
    @inline(__always)
    static func binary<F: BinaryVectorFunction>(
        _: F.Type, _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        _ out: UnsafeMutableBufferPointer<Float>, _ count: Int, kernel: StaticString = #function
    ) {
        requireCount(a.count, atLeast: count, "a", kernel: kernel)
        requireCount(b.count, atLeast: count, "b", kernel: kernel)
        requireCount(out.count, atLeast: count, "out", kernel: kernel)
        guard count > 0 else { return }
        let a = a.baseAddress!, b = b.baseAddress!, o = out.baseAddress!
        var i = 0
        while i + 16 <= count {
            o.store16(F.apply(a.load16(i), b.load16(i)), at: i)
            i += 16
        }
        if i < count {
            var ta = Vector16(), tb = Vector16()
            for k in 0..<(count - i) {
                ta[k] = a[i + k]
                tb[k] = b[i + k]
            }
            let r = F.apply(ta, tb)
            for k in 0..<(count - i) { o[i + k] = r[k] }
        }
    }

    /// out[i] = F(x[i]), with the same tail handling as `binary`.
    @inline(__always)
    static func unary<F: UnaryVectorFunction>(
        _: F.Type, _ x: UnsafeBufferPointer<Float>, _ out: UnsafeMutableBufferPointer<Float>, _ count: Int,
        kernel: StaticString = #function
    ) {
        requireCount(x.count, atLeast: count, "x", kernel: kernel)
        requireCount(out.count, atLeast: count, "out", kernel: kernel)
        guard count > 0 else { return }
        let x = x.baseAddress!, o = out.baseAddress!
        var i = 0
        while i + 16 <= count {
            o.store16(F.apply(x.load16(i)), at: i)
            i += 16
        }
        if i < count {
            var tail = Vector16()
            for k in 0..<(count - i) { tail[k] = x[i + k] }
            let r = F.apply(tail)
            for k in 0..<(count - i) { o[i + k] = r[k] }
        }
    }
}

/// A lane-wise function of one vector, for `VectorOps.unary`.
protocol UnaryVectorFunction {
    static func apply(_ x: Vector16) -> Vector16
}

/// A lane-wise function of two vectors, for `VectorOps.binary`.
protocol BinaryVectorFunction {
    static func apply(_ a: Vector16, _ b: Vector16) -> Vector16
}

enum Sum: BinaryVectorFunction {
    @_transparent static func apply(_ a: Vector16, _ b: Vector16) -> Vector16 { a + b }
}

enum Product: BinaryVectorFunction {
    @_transparent static func apply(_ a: Vector16, _ b: Vector16) -> Vector16 { a * b }
}

extension VectorOps {
    /// out[i] = x[i] rounded to the nearest half-precision value (ties to even), kept as Float:
    /// what a value loses when stored in an f16 buffer such as a KV cache.
    public static func roundToHalf(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        requireCount(x.count, atLeast: count, "x")
        requireCount(out.count, atLeast: count, "out")
        for i in 0..<count { out[i] = Float(Float16(x[i])) }
    }
}
