import KilnKernels
import KilnTestSupport
import Testing

@Suite struct ChannelOpsTests {
    // Spatial sizes below, at and above one vector, and with a tail; 5000 is large enough to
    // run over the pool.
    @Test(arguments: [1, 16, 49, 196, 5000])
    func reductionsAndAffineMatchScalarLoops(spatial: Int) {
        var rng = SeededGenerator(seed: UInt64(spatial))
        let batch = 3, channels = 5, count = batch * channels * spatial
        let a = rng.floats(count), b = rng.floats(count)
        func reference(_ value: (Int) -> Double) -> [Double] {
            (0..<channels).map { c in
                var total = 0.0
                for n in 0..<batch { for i in 0..<spatial { total += value((n * channels + c) * spatial + i) } }
                return total
            }
        }
        var sums = [Double](repeating: .nan, count: channels), squares = sums, dots = sums
        sums.withUnsafeMutableBufferPointer { s in
            squares.withUnsafeMutableBufferPointer { q in
                VectorOps.channelSums(a.buffer, batch: batch, channels: channels, spatial: spatial, sums: s, squares: q, pool: .shared)
            }
        }
        dots.withUnsafeMutableBufferPointer { VectorOps.channelDots(a.buffer, b.buffer, batch: batch, channels: channels, spatial: spatial, dots: $0, pool: .shared) }
        let expectedSums = reference { Double(a[$0]) }, expectedSquares = reference { Double(a[$0]) * Double(a[$0]) }
        let expectedDots = reference { Double(a[$0]) * Double(b[$0]) }
        for c in 0..<channels {
            #expect(abs(sums[c] - expectedSums[c]) < 1e-3 && abs(squares[c] - expectedSquares[c]) < 1e-3 && abs(dots[c] - expectedDots[c]) < 1e-3)
        }
        let wa = rng.floats(channels), wb = rng.floats(channels), shift = rng.floats(channels)
        var out = [Float](repeating: .nan, count: count)
        VectorOps.channelAffine(a.buffer, scale: wa.buffer, plus: b.buffer, scale: wb.buffer, shift: shift.buffer, batch: batch,
                                channels: channels, spatial: spatial, into: out.mutableBuffer, pool: .shared)
        let expected = (0..<count).map { i in let c = (i / spatial) % channels; return a[i] * wa[c] + b[i] * wb[c] + shift[c] }
        #expect(maxError(out, expected, floor: 1) < 1e-6)
        VectorOps.channelAffine(a.buffer, scale: wa.buffer, shift: shift.buffer, batch: batch, channels: channels, spatial: spatial,
                                into: out.mutableBuffer)
        #expect(maxError(out, (0..<count).map { i in let c = (i / spatial) % channels; return a[i] * wa[c] + shift[c] }, floor: 1) < 1e-6)
    }
}

@Suite struct TransposeTests {
    // Sizes below, at and across the 16 × 16 tile, with and without a pool and an added term.
    @Test(arguments: [(1, 1), (7, 49), (16, 16), (64, 196), (33, 17)])
    func transposeMatchesScalarLoop(shape: (Int, Int)) {
        var rng = SeededGenerator(seed: UInt64(shape.0 * 1000 + shape.1))
        let (rows, columns, batch) = (shape.0, shape.1, 3)
        let x = rng.floats(batch * rows * columns), extra = rng.floats(batch * rows * columns)
        var plain = [Float](repeating: .nan, count: x.count), scaled = plain
        VectorOps.transposeBatched(x.buffer, batch: batch, rows: rows, columns: columns, into: plain.mutableBuffer)
        VectorOps.transposeBatched(x.buffer, batch: batch, rows: rows, columns: columns, scale: 0.5, adding: extra.buffer,
                                   into: scaled.mutableBuffer, pool: .shared)
        for b in 0..<batch {
            for i in 0..<rows {
                for j in 0..<columns {
                    let t = b * rows * columns + j * rows + i, s = b * rows * columns + i * columns + j
                    #expect(plain[t] == x[s])
                    #expect(scaled[t] == 0.5 * x[s] + extra[t])
                }
            }
        }
    }
}
