import Foundation

func Foundation_log(_ x: Double) -> Double { Foundation.log(x) }
func Foundation_cos(_ x: Double) -> Double { Foundation.cos(x) }

/// The largest elementwise error of `actual` against `expected`, measured as
/// |a − e| / max(|e|, floor): relative for large values, absolute below `floor`.
public func maxError(_ actual: [Float], _ expected: [Float], floor: Float = 1) -> Float {
    precondition(actual.count == expected.count, "length \(actual.count) vs \(expected.count)")
    var worst: Float = 0
    for (a, e) in zip(actual, expected) {
        if a == e { continue }  // also equal infinities
        if a.isNaN || e.isNaN { return .infinity }
        worst = max(worst, abs(a - e) / max(abs(e), floor))
    }
    return worst
}

/// Sizes around the 16-lane vector width: 0, 1, width−1, width, width+1, 3·width+1 and more.
public let vectorEdgeSizes = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 49, 63, 64, 65, 100, 577]
