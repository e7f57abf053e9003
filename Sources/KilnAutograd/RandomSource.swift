import Foundation

/// A seeded xoshiro256** generator with the draws training needs (uniform, normal, permutations).
/// The same seed gives the same stream on every machine, which is what makes `--seed` and
/// `--resume` reproducible.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        // splitmix64 spreads the seed over the four words of state.
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    /// A stream for one purpose (e.g. one training step) derived from a seed and counters.
    public init(seed: UInt64, stream: UInt64...) {
        var mixed = seed
        for value in stream {
            var g = RandomSource(seed: mixed ^ (value &* 0x9E37_79B9_7F4A_7C15))
            mixed = g.next()
        }
        self.init(seed: mixed)
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func unit() -> Float { Float(next() >> 40) * 0x1p-24 }

    public mutating func uniform(_ count: Int, in range: ClosedRange<Float>) -> [Float] {
        (0..<count).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * unit() }
    }

    /// Standard normal draws (Box–Muller in Double), scaled and shifted.
    public mutating func normal(_ count: Int, mean: Float = 0, standardDeviation: Float = 1) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(count + 1)
        while out.count < count {
            let u1 = (Double(next() >> 11) + 1) * 0x1p-53, u2 = Double(next() >> 11) * 0x1p-53
            let radius = (-2 * Foundation.log(u1)).squareRoot()
            out.append(mean + standardDeviation * Float(radius * Foundation.cos(2 * .pi * u2)))
            out.append(mean + standardDeviation * Float(radius * Foundation.sin(2 * .pi * u2)))
        }
        return Array(out.prefix(count))
    }
}
