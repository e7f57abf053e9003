// Test-only conveniences: hand an array to a kernel as an unsafe buffer. The arrays outlive the
// calls in every test, and Array storage is stable while not mutated elsewhere.
extension Array where Element == Float {
    var buffer: UnsafeBufferPointer<Float> { withUnsafeBufferPointer { $0 } }
    var mutableBuffer: UnsafeMutableBufferPointer<Float> {
        mutating get { withUnsafeMutableBufferPointer { $0 } }
    }
}
extension Array where Element == Int32 {
    var mutableBuffer: UnsafeMutableBufferPointer<Int32> {
        mutating get { withUnsafeMutableBufferPointer { $0 } }
    }
}
extension Array where Element == UInt8 {
    var buffer: UnsafeBufferPointer<UInt8> { withUnsafeBufferPointer { $0 } }
}
