import Foundation

/// Byte strings (with an optional split point) → 32-bit values, open addressing over one
/// shared byte store. Tokenizers look pieces up here by their UTF-8 bytes, in place in the
/// text being encoded: no String is built, and no hash has to normalize Unicode as a Swift
/// String's does. A slot holds the key's hash fingerprint beside its entry, so a miss (most
/// candidate pairs of a merge loop) reads one slot and nothing else.
struct ByteSequenceTable: Sendable {
    private var store: [UInt8] = []
    /// Per entry: start in `store` (high 32 bits) and length (low 32), and its split.
    private var entries: [UInt64] = []
    private var splits: [Int32] = []
    private var values: [Int32] = []
    /// Fingerprint (high 32 bits) and entry index + 1 (low 32); 0 is empty.
    private var slots: [UInt64]
    private var mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    /// Each piece's UTF-8 → its id (the first id of a repeated piece).
    init(pieces: [String]) {
        self.init(capacity: pieces.count)
        for (id, piece) in pieces.enumerated() { insert(Array(piece.utf8), value: Int32(id)) }
    }

    /// Eight bytes at a time, multiply-xorshift mixed: keys are short pieces of text.
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>, split: Int) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(truncatingIfNeeded: split) << 32) ^ UInt64(bytes.count)
        let raw = UnsafeRawBufferPointer(bytes)
        var i = 0
        while i + 8 <= raw.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        if i < raw.count {
            var tail: UInt64 = 0
            for j in i..<raw.count { tail = tail << 8 | UInt64(raw[j]) }
            h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
            h ^= h >> 32
        }
        h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }

    /// Adds `key` unless it is already present (the first value stays, as vocabularies keep the
    /// first id of a repeated piece and the lowest rank of a repeated merge).
    mutating func insert(_ key: [UInt8], split: Int = 0, value: Int32) {
        if (values.count + 1) * 2 > slots.count { grow() }
        key.withUnsafeBufferPointer { k in
            let h = Self.hash(k, split: split)
            var slot = Int(truncatingIfNeeded: h) & mask
            while slots[slot] != 0 {
                if matches(slots[slot], h, k, split: split) != nil { return }
                slot = (slot + 1) & mask
            }
            entries.append(UInt64(store.count) << 32 | UInt64(k.count))
            splits.append(Int32(truncatingIfNeeded: split))
            values.append(value)
            slots[slot] = (h >> 32) << 32 | UInt64(entries.count)
            store.append(contentsOf: k)
        }
    }

    /// Twice the slots, every entry placed again (its hash recomputed from the store).
    private mutating func grow() {
        slots = [UInt64](repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        store.withUnsafeBufferPointer { s in
            for (index, info) in entries.enumerated() {
                let key = UnsafeBufferPointer(rebasing: s[Int(info >> 32)..<(Int(info >> 32) + Int(info & 0xFFFF_FFFF))])
                let h = Self.hash(key, split: Int(splits[index]))
                var slot = Int(truncatingIfNeeded: h) & mask
                while slots[slot] != 0 { slot = (slot + 1) & mask }
                slots[slot] = (h >> 32) << 32 | UInt64(index + 1)
            }
        }
    }

    /// The entry index a slot holds when it is `k` with `split`.
    private func matches(_ slot: UInt64, _ h: UInt64, _ k: UnsafeBufferPointer<UInt8>, split: Int) -> Int? {
        guard slot >> 32 == h >> 32 else { return nil }
        let entry = Int(slot & 0xFFFF_FFFF) - 1
        let info = entries[entry]
        guard Int(info & 0xFFFF_FFFF) == k.count, splits[entry] == Int32(truncatingIfNeeded: split) else { return nil }
        guard let base = k.baseAddress, k.count > 0 else { return entry }
        let equal = store.withUnsafeBufferPointer { s in memcmp(s.baseAddress! + Int(info >> 32), base, k.count) == 0 }
        return equal ? entry : nil
    }

    /// The value stored for `text[range]` (a piece of a text being encoded) with `split`, if any.
    func value(in text: [UInt8], _ range: Range<Int>, split: Int = 0) -> Int32? {
        text.withUnsafeBufferPointer { t in
            let bytes = UnsafeBufferPointer(rebasing: t[range])
            let h = Self.hash(bytes, split: split)
            var slot = Int(truncatingIfNeeded: h) & mask
            while true {
                let s = slots[slot]
                if s == 0 { return nil }
                if let entry = matches(s, h, bytes, split: split) { return values[entry] }
                slot = (slot + 1) & mask
            }
        }
    }
}
