/// Stops with a message naming the kernel and the violated requirement.
///
/// Kernels take raw buffers, so a wrong size would otherwise read or write out of bounds. Unlike
/// `precondition`, the message survives optimized builds, which is what a user sees.
@inline(__always)
func kernelRequire(
    _ condition: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String,
    kernel: StaticString = #function
) {
    if !condition() {
        fatalError("KilnKernels.\(kernel): \(message())")
    }
}

@inline(__always)
func requireCount(_ actual: Int, atLeast needed: Int, _ name: String, kernel: StaticString = #function) {
    if actual < needed {
        fatalError("KilnKernels.\(kernel): \(name) holds \(actual) elements, needs at least \(needed)")
    }
}

@inline(__always)
func requirePositive(_ value: Int, _ name: String, kernel: StaticString = #function) {
    if value <= 0 {
        fatalError("KilnKernels.\(kernel): \(name) must be positive, got \(value)")
    }
}
