/// Per-channel reductions and affine maps over NCHW batches ([batch][channels][spatial]): the
/// arithmetic of batch norm and of convolution bias gradients. Each channel's planes are
/// reduced 16 lanes at a time in Float, planes are summed in Double.
extension VectorOps {
    /// sums[c] = Σ x over the batch and positions of channel c; if given, squares[c] = Σ x².
    public static func channelSums(
        _ x: UnsafeBufferPointer<Float>, batch: Int, channels: Int, spatial: Int,
        sums: UnsafeMutableBufferPointer<Double>, squares: UnsafeMutableBufferPointer<Double>? = nil, pool: ThreadPool? = nil
    ) {
        requireCount(x.count, atLeast: batch * channels * spatial, "x")
        requireCount(sums.count, atLeast: channels, "sums")
        if let squares { requireCount(squares.count, atLeast: channels, "squares") }
        forEachChannel(channels, batch * channels * spatial, pool) { c in
            var total: Double = 0, totalSquares: Double = 0
            for n in 0..<batch {
                let plane = x.baseAddress! + (n * channels + c) * spatial
                var s = Vector16(), q = Vector16(), i = 0
                while i + 16 <= spatial {
                    let v = plane.load16(i)
                    s += v
                    q = q.addingProduct(v, v)
                    i += 16
                }
                var tail: Float = 0, tailSquares: Float = 0
                while i < spatial {
                    tail += plane[i]
                    tailSquares += plane[i] * plane[i]
                    i += 1
                }
                total += Double(horizontalSum(s) + tail)
                totalSquares += Double(horizontalSum(q) + tailSquares)
            }
            sums[c] = total
            squares?[c] = totalSquares
        }
    }

    /// Runs `body` for every channel, over the pool when there is enough work to share.
    @inline(__always)
    static func forEachChannel(_ channels: Int, _ elements: Int, _ pool: ThreadPool?, _ body: (Int) -> Void) {
        guard let pool, pool.threadCount > 1, elements >= 1 << 16, channels > 1 else {
            for c in 0..<channels { body(c) }
            return
        }
        pool.parallelFor(channels) { range in for c in range { body(c) } }
    }

    /// dots[c] = Σ a·b over the batch and positions of channel c.
    public static func channelDots(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, batch: Int, channels: Int, spatial: Int,
        dots: UnsafeMutableBufferPointer<Double>, pool: ThreadPool? = nil
    ) {
        requireCount(a.count, atLeast: batch * channels * spatial, "a")
        requireCount(b.count, atLeast: batch * channels * spatial, "b")
        requireCount(dots.count, atLeast: channels, "dots")
        forEachChannel(channels, batch * channels * spatial, pool) { c in
            var total: Double = 0
            for n in 0..<batch {
                let offset = (n * channels + c) * spatial
                total += Double(dotUnchecked(a.baseAddress! + offset, b.baseAddress! + offset, count: spatial))
            }
            dots[c] = total
        }
    }

    /// out = a·wa[c] + b·wb[c] + shift[c] per channel (b and wb optional). `out` may be a or b.
    public static func channelAffine(
        _ a: UnsafeBufferPointer<Float>, scale wa: UnsafeBufferPointer<Float>,
        plus b: UnsafeBufferPointer<Float>? = nil, scale wb: UnsafeBufferPointer<Float>? = nil,
        shift: UnsafeBufferPointer<Float>, batch: Int, channels: Int, spatial: Int, into out: UnsafeMutableBufferPointer<Float>,
        pool: ThreadPool? = nil
    ) {
        let count = batch * channels * spatial
        requireCount(a.count, atLeast: count, "a")
        requireCount(out.count, atLeast: count, "out")
        requireCount(wa.count, atLeast: channels, "scale")
        requireCount(shift.count, atLeast: channels, "shift")
        if let b { requireCount(b.count, atLeast: count, "b") }
        if let wb { requireCount(wb.count, atLeast: channels, "second scale") }
        kernelRequire((b == nil) == (wb == nil), "a second input needs its scale", kernel: "channelAffine")
        forEachChannel(channels, count, pool) { c in
            for n in 0..<batch {
                let offset = (n * channels + c) * spatial
                let x = a.baseAddress! + offset, y = b.map { $0.baseAddress! + offset }, o = out.baseAddress! + offset
                let ka = wa[c], kb = wb?[c] ?? 0, k = shift[c]
                var i = 0
                if let y {
                    while i + 16 <= spatial {
                        o.store16(x.load16(i) * ka + (y.load16(i) * kb + k), at: i)
                        i += 16
                    }
                    while i < spatial {
                        o[i] = x[i] * ka + (y[i] * kb + k)
                        i += 1
                    }
                } else {
                    while i + 16 <= spatial {
                        o.store16(x.load16(i) * ka + k, at: i)
                        i += 16
                    }
                    while i < spatial {
                        o[i] = x[i] * ka + k
                        i += 1
                    }
                }
            }
        }
    }
}
