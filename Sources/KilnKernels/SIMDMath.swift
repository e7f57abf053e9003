// Vector helpers shared by the kernels: unaligned loads/stores and a vectorized exp.
// Swift has no vector transcendental functions, and a scalar `exp` per element would dominate
// softmax, SiLU and attention.

// Helpers marked @usableFromInline let the search loops of other modules inline the distance
// functions (`VectorOps.dotUnchecked`), which they call millions of times per second.
@usableFromInline typealias Vector16 = SIMD16<Float>
@usableFromInline typealias Vector8 = SIMD8<Float>

extension UnsafePointer where Pointee == Float {
    @inlinable @inline(__always) func load16(_ offset: Int) -> Vector16 {
        // SAFETY: callers check offset + 16 <= count of the buffer this pointer came from.
        UnsafeRawPointer(self + offset).loadUnaligned(as: Vector16.self)
    }
    @inlinable @inline(__always) func load8(_ offset: Int) -> Vector8 {
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

/// The shared first half of the exponentials: z = 1.5·2²³ + x·log2 e (n = round(x·log2 e) in its
/// low mantissa bits), n, and j = e^(x − n·ln2) by the degree-5 polynomial.
@_transparent
func expReduction(_ x: Vector16) -> (z: Vector16, n: Vector16, j: Vector16) {
    let r = Vector16(repeating: 0x1.8p23)
    let z = r.addingProduct(x, Vector16(repeating: 0x1.715476p+0))
    let n = z - r
    let b = x.addingProduct(-n, Vector16(repeating: 0x1.62e4p-1)).addingProduct(-n, Vector16(repeating: 0x1.7f7d1cp-20))
    let u = b * b
    let high = Vector16(repeating: 0x1.573e2ep-5).addingProduct(Vector16(repeating: 0x1.0e4020p-7), b)
    let middle = Vector16(repeating: 0x1.fffdb6p-2).addingProduct(Vector16(repeating: 0x1.555e66p-3), b)
    let low = Vector16(repeating: 1).addingProduct(Vector16(repeating: 0x1.ffffecp-1), b)
    return (z, n, low.addingProduct(middle.addingProduct(high, u), u))
}

/// e^x for 16 lanes with the operations of ggml's AVX-512 `ggml_v_expf` (Arm's optimized-routines
/// algorithm), FMA for FMA, so SiLU and softmax give llama.cpp's bits: n = round(x·log2 e) by the
/// 1.5·2²³ trick, b = x − n·ln2 in two FMA steps, a degree-5 polynomial in b, then j·2ⁿ. Error
/// ≤ 1.5 ulp; |n| > 192 gives 0 (x → −∞) or +∞.
@_transparent
func exp16(_ x: Vector16) -> Vector16 {
    let (z, n, j) = expReduction(x)
    // j·2ⁿ (vscalefps) as two exact power-of-two factors, so a subnormal result rounds once. n sits
    // in z's low mantissa bits; lanes with |n| > 192 (or non-finite) are replaced below.
    let integer = unsafeBitCast(z, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let first = integer &>> 1, second = integer &- first
    let result = j * unsafeBitCast((first &+ 127) &<< 23, to: Vector16.self)
        * unsafeBitCast((second &+ 127) &<< 23, to: Vector16.self)
    let magnitude = n.replacing(with: -n, where: n .< 0)
    let outside = magnitude .> 192
    if !any(outside) { return result }
    let saturated = Vector16(repeating: 0).replacing(with: .infinity, where: .!(n .<= 0))
    return result.replacing(with: saturated, where: outside)
}

/// Σ of the 16 lanes by halving (SIMD.sum() is an out-of-line generic call).
@_transparent @usableFromInline
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

/// e^x for x ≤ 0 (softmax after subtracting the row maximum), leaner than `exp16`: the same
/// reduction and polynomial, 2ⁿ built straight into the exponent bits (valid because x is
/// clamped to ≥ −87.3, where the result is still a normal float), and x < −87.3 (−∞ included)
/// giving exactly 0. Relative error ≤ 2e-7 against e^x.
@inline(__always)
func expNonPositive16(_ x: Vector16) -> Vector16 {
    let (z, _, j) = expReduction(vectorMax(x, Vector16(repeating: -87.3)))
    let integer = unsafeBitCast(z, to: SIMD16<Int32>.self) &- 0x4B40_0000
    let value = unsafeBitCast(unsafeBitCast(j, to: SIMD16<Int32>.self) &+ (integer &<< 23), to: Vector16.self)
    return value.replacing(with: 0, where: x .< -87.3)
}

/// out[i] = e^(x[i] − shift) for x[i] ≤ shift (shift ≥ the row's maximum); returns Σ out[i].
/// `count` must be a multiple of 16 (padded rows).
@inline(__always)
func expBelowShiftPadded(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int, shift: Float) -> Float {
    var sum = Vector16(), i = 0
    while i < count {
        let e = expNonPositive16(x.load16(i) - shift)
        out.store16(e, at: i)
        sum += e
        i += 16
    }
    return horizontalSum(sum)
}

/// e^x for one value with the same polynomial as `exp16` (used in tails so results do not depend
/// on where a vector boundary falls).
@inline(__always)
func expScalar(_ x: Float) -> Float {
    exp16(Vector16(repeating: x))[0]
}

/// Σ a[i]·b[i] over `count` floats, 4 independent 16-lane accumulators.
@inlinable @inline(__always)
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
