/// Byte strings (with an optional split point) → 32-bit values, open addressing over one
/// shared byte store. Tokenizers look pieces up here by their UTF-8 bytes, in place in the
/// text being encoded: no String is built, and no hash has to normalize Unicode as a Swift
/// String's does.
struct ByteSequenceTable: Sendable {
    private var store: [UInt8] = []
    private var starts: [Int32] = []
    private var lengths: [Int32] = []
    private var splits: [Int32] = []
    private var values: [Int32] = []
    private var slots: [Int32]
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    var count: Int { values.count }

    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>, split: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(truncatingIfNeeded: split)
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Adds `key` unless it is already present (the first value stays, as vocabularies keep the
    /// first id of a repeated piece and the lowest rank of a repeated merge).
    mutating func insert(_ key: [UInt8], split: Int = 0, value: Int32) {
        key.withUnsafeBufferPointer { k in
            var slot = Self.hash(k, split: split) & mask
            while slots[slot] >= 0 {
                if matches(Int(slots[slot]), k, split: split) { return }
                slot = (slot + 1) & mask
            }
            slots[slot] = Int32(values.count)
            starts.append(Int32(store.count))
            lengths.append(Int32(k.count))
            splits.append(Int32(split))
            values.append(value)
            store.append(contentsOf: k)
        }
    }

    private func matches(_ entry: Int, _ k: UnsafeBufferPointer<UInt8>, split: Int) -> Bool {
        guard Int(lengths[entry]) == k.count, Int(splits[entry]) == split else { return false }
        let start = Int(starts[entry])
        for i in 0..<k.count where store[start + i] != k[i] { return false }
        return true
    }

    /// The value stored for `text[range]` (a piece of a text being encoded) with `split`, if any.
    func value(in text: [UInt8], _ range: Range<Int>, split: Int = 0) -> Int32? {
        text.withUnsafeBufferPointer { t in
            let bytes = UnsafeBufferPointer(rebasing: t[range])
            var slot = Self.hash(bytes, split: split) & mask
            while true {
                let entry = slots[slot]
                if entry < 0 { return nil }
                if matches(Int(entry), bytes, split: split) { return values[Int(entry)] }
                slot = (slot + 1) & mask
            }
        }
    }
}
