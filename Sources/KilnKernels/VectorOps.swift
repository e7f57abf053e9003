/// Elementwise SIMD kernels over raw float buffers. Every kernel takes explicit input and output
/// buffers, checks their lengths, and handles any length (no multiple-of-16 requirement).
public enum VectorOps {
    /// out[i] = a[i] + b[i] for i < count.
    public static func add(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        binary(a, b, out, count) { $0 + $1 } scalar: { $0 + $1 }
    }

    /// out[i] = a[i] · b[i] for i < count.
    public static func mul(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableBufferPointer<Float>, count: Int
    ) {
        binary(a, b, out, count) { $0 * $1 } scalar: { $0 * $1 }
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
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, count: Int) -> Float {
        requireCount(a.count, atLeast: count, "a")
        requireCount(b.count, atLeast: count, "b")
        guard count > 0 else { return 0 }
        return dotUnchecked(a.baseAddress!, b.baseAddress!, count)
    }

    @inline(__always)
    static func binary(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, _ out: UnsafeMutableBufferPointer<Float>,
        _ count: Int, kernel: StaticString = #function,
        _ vector: (Vector16, Vector16) -> Vector16, scalar: (Float, Float) -> Float
    ) {
        requireCount(a.count, atLeast: count, "a", kernel: kernel)
        requireCount(b.count, atLeast: count, "b", kernel: kernel)
        requireCount(out.count, atLeast: count, "out", kernel: kernel)
        guard count > 0 else { return }
        let a = a.baseAddress!, b = b.baseAddress!, o = out.baseAddress!
        var i = 0
        while i + 16 <= count {
            o.store16(vector(a.load16(i), b.load16(i)), at: i)
            i += 16
        }
        while i < count {
            o[i] = scalar(a[i], b[i])
            i += 1
        }
    }
}
