// Vector helpers shared by the kernels: unaligned loads/stores and a vectorized exp.
// Swift has no vector transcendental functions, and a scalar `exp` per element would dominate
// softmax, SiLU and attention.

typealias Vector16 = SIMD16<Float>
typealias Vector8 = SIMD8<Float>

extension UnsafePointer where Pointee == Float {
    @inline(__always) func load16(_ offset: Int) -> Vector16 {
        // SAFETY: callers check offset + 16 <= count of the buffer this pointer came from.
        UnsafeRawPointer(self + offset).loadUnaligned(as: Vector16.self)
    }
    @inline(__always) func load8(_ offset: Int) -> Vector8 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Vector8.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func load16(_ offset: Int) -> Vector16 {
        UnsafeRawPointer(self + offset).loadUnaligned(as: Vector16.self)
    }
    @inline(__always) func store16(_ value: Vector16, at offset: Int) {
        // SAFETY: callers check offset + 16 <= count of the buffer this pointer came from.
        UnsafeMutableRawPointer(self + offset).storeBytes(of: value, as: Vector16.self)
    }
}

/// Lane-wise max/min as compare + blend. The standard library's pointwiseMax/Min implement IEEE
/// maximum (NaN-propagation rules) lane by lane in scalar code; these lower to vmaxps/vminps-like
/// selects. Where a lane is NaN the result takes `a`.
@inline(__always)
func vectorMax(_ a: Vector16, _ b: Vector16) -> Vector16 { a.replacing(with: b, where: b .> a) }

@inline(__always)
func vectorMin(_ a: Vector16, _ b: Vector16) -> Vector16 { a.replacing(with: b, where: b .< a) }

/// e^x for 16 lanes: Cephes-style range reduction x = n·ln2 + r, a degree-6 polynomial for e^r,
/// and 2^n built in the exponent bits. Relative error ≈ 2 ulp; x below −87.3 (including −∞) gives 0,
/// x above 88 saturates at e^88 ≈ 1.65e38.
@_transparent
func exp16(_ input: Vector16) -> Vector16 {
    let x = vectorMin(vectorMax(input, Vector16(repeating: -87.33654)), Vector16(repeating: 88.0))
    // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick: the sum's low mantissa bits
    // hold n, so both the rounded float and the integer come out without scalarized conversions.
    let magic = Vector16(repeating: 12_582_912)
    let shifted = x * 1.442_695_04 + magic
    let n = shifted - magic
    var r = x - n * 0.693_359_375
    r = r + n * 2.121_944_4e-4
    var p = Vector16(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let r2 = r * r
    p = p * r2 + r + 1
    let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let scale = unsafeBitCast((integer &+ 127) &<< 23, to: Vector16.self)
    let result = p * scale
    return result.replacing(with: 0, where: input .< -87.33654)
}

/// Σ of the 16 lanes by halving (SIMD.sum() is an out-of-line generic call).
@_transparent
func horizontalSum(_ v: Vector16) -> Float {
    let eight = v.lowHalf + v.highHalf
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// The largest of the 16 lanes by halving.
@_transparent
func horizontalMax(_ v: Vector16) -> Float {
    let eight = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
    let four = eight.lowHalf.replacing(with: eight.highHalf, where: eight.highHalf .> eight.lowHalf)
    return Swift.max(Swift.max(four[0], four[1]), Swift.max(four[2], four[3]))
}

/// e^x for one value with the same polynomial as `exp16` (used in tails so results do not depend
/// on where a vector boundary falls).
@inline(__always)
func expScalar(_ x: Float) -> Float {
    exp16(Vector16(repeating: x))[0]
}

/// Σ a[i]·b[i] over `count` floats, 4 independent 16-lane accumulators.
@inline(__always)
func dotUnchecked(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var i = 0
    var s0 = Vector16(), s1 = Vector16(), s2 = Vector16(), s3 = Vector16()
    while i + 64 <= count {
        s0.addProduct(a.load16(i), b.load16(i))
        s1.addProduct(a.load16(i + 16), b.load16(i + 16))
        s2.addProduct(a.load16(i + 32), b.load16(i + 32))
        s3.addProduct(a.load16(i + 48), b.load16(i + 48))
        i += 64
    }
    while i + 16 <= count {
        s0.addProduct(a.load16(i), b.load16(i))
        i += 16
    }
    var total = horizontalSum((s0 + s1) + (s2 + s3))
    if i + 8 <= count {
        let product = a.load8(i) * b.load8(i)
        let four = product.lowHalf + product.highHalf
        total += (four[0] + four[1]) + (four[2] + four[3])
        i += 8
    }
    while i < count {
        total += a[i] * b[i]
        i += 1
    }
    return total
}

/// y[i] += alpha·x[i] over `count` floats.
@inline(__always)
func axpyUnchecked(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    let a = Vector16(repeating: alpha)
    while i + 16 <= count {
        var v = y.load16(i)
        v.addProduct(a, x.load16(i))
        y.store16(v, at: i)
        i += 16
    }
    while i < count {
        y[i] += alpha * x[i]
        i += 1
    }
}

/// y[i] *= alpha over `count` floats.
@inline(__always)
func scaleUnchecked(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ count: Int) {
    var i = 0
    while i + 16 <= count {
        y.store16(y.load16(i) * alpha, at: i)
        i += 16
    }
    while i < count {
        y[i] *= alpha
        i += 1
    }
}
