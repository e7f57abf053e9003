import Foundation
import KilnFormats

/// The on-disk form of an HNSW index: one file, written atomically (temporary file, fsync,
/// rename), so a crash during a save always leaves the previous index readable.
///
///     "KILNHNSW" · version u32 (2) · metric u8 · 3 zero bytes · dimension u32 · m u32 ·
///     efConstruction u32 · efSearch u32 · entry i64 · top layer i32 · 4 zero bytes · count u64 ·
///     zero bytes up to offset 64 ·
///     vectors f32 × count × dimension · ids i64 × count · removed u8 × count ·
///     per node: layers u8, then per layer: neighbour count u32 and neighbours u32 × that ·
///     FNV-1a 64 checksum of everything before it
///
/// Vectors start at offset 64, so a load maps the file and searches read them in place (the page
/// cache is the only copy). Version 1 files (the same fields, vectors at offset 49) load by copy.
/// Loading checks the magic, version, every size against the file length, every neighbour and
/// the entry point against the node count, and the checksum, so a successful load guarantees
/// that later searches stay in bounds.
extension HNSWIndex {
    public enum PersistenceError: Error, Equatable, CustomStringConvertible {
        case corrupt(String)
        case cannotWrite(String)

        public var description: String {
            switch self {
            case .corrupt(let m): return "the index file is damaged: \(m)"
            case .cannotWrite(let m): return "cannot save the index: \(m)"
            }
        }
    }

    static let magic = Array("KILNHNSW".utf8)
    static let vectorOffset = 64

    public func save(to path: String) throws {
        var out = Data()
        out.reserveCapacity(Self.vectorOffset + graph.count * (dimension * 4 + 9 + 4 * (2 * m + 2)))
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        out.append(contentsOf: Self.magic)
        put(UInt32(2))
        put(UInt8(DistanceMetric.allCases.firstIndex(of: metric)!)); put(UInt8(0)); put(UInt16(0))
        put(UInt32(dimension)); put(UInt32(m)); put(UInt32(efConstruction)); put(UInt32(efSearch))
        put(Int64(graph.entryPoint)); put(Int32(graph.topLayer)); put(UInt32(0)); put(UInt64(graph.count))
        out.append(contentsOf: [UInt8](repeating: 0, count: Self.vectorOffset - out.count))
        out.append(UnsafeBufferPointer(start: graph.vectors, count: graph.count * dimension))  // little-endian hosts (x86-64, arm64)
        for id in graph.ids { put(id) }
        out.append(contentsOf: graph.removed.map { $0 ? UInt8(1) : 0 })
        for node in 0..<graph.count {
            let layers = Int(graph.levels[node]) + 1
            put(UInt8(layers))
            for layer in 0..<layers {
                let neighbours = graph.neighbours(node, layer: layer)
                put(UInt32(neighbours.count))
                for n in neighbours { put(UInt32(n)) }
            }
        }
        put(out.withUnsafeBytes { fnv1a($0) })
        do {
            try DurableFile.write(out, to: path)
        } catch {
            throw PersistenceError.cannotWrite("\(error)")
        }
    }

    public static func load(from path: String) throws -> HNSWIndex {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw PersistenceError.corrupt("\(error)") }
        let bytes = file.bytes
        guard bytes.count >= 8 + 8 else { throw PersistenceError.corrupt("\(bytes.count) bytes is too short") }
        let bodyCount = bytes.count - 8
        var offset = 0
        func take(_ n: Int, _ field: String) throws -> Int {
            guard n >= 0, n <= bodyCount - offset else { throw PersistenceError.corrupt("\(field) runs past the end") }
            defer { offset += n }
            return offset
        }
        func get<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
            let at = try take(MemoryLayout<T>.size, field)
            return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
        }
        guard Array(UnsafeRawBufferPointer(rebasing: bytes[0..<8])) == magic else { throw PersistenceError.corrupt("not a Kiln HNSW index") }
        offset = 8
        let version = try get(UInt32.self, "version")
        guard version == 1 || version == 2 else { throw PersistenceError.corrupt("version \(version) is not supported") }
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: bodyCount, as: UInt64.self))
        guard stored == fnv1a(UnsafeRawBufferPointer(rebasing: bytes[0..<bodyCount])) else { throw PersistenceError.corrupt("checksum mismatch") }
        let metricIndex = Int(try get(UInt8.self, "metric"))
        guard metricIndex < DistanceMetric.allCases.count else { throw PersistenceError.corrupt("unknown metric \(metricIndex)") }
        if version == 2 { _ = try take(3, "padding") }
        let dimension = Int(try get(UInt32.self, "dimension")), m = Int(try get(UInt32.self, "m"))
        let efConstruction = Int(try get(UInt32.self, "efConstruction")), efSearch = Int(try get(UInt32.self, "efSearch"))
        guard dimension > 0, dimension <= 1 << 16, m >= 2, m <= 1024, efConstruction >= 1, efSearch >= 1 else {
            throw PersistenceError.corrupt("implausible parameters")
        }
        let entry = Int(try get(Int64.self, "entry point")), top = Int(try get(Int32.self, "top layer"))
        if version == 2 { _ = try take(4, "padding") }
        let count64 = try get(UInt64.self, "count")
        guard count64 <= UInt64(bodyCount / (dimension * 4 + 9)) else { throw PersistenceError.corrupt("count \(count64) cannot fit in the file") }
        let count = Int(count64)
        if version == 2 {
            guard offset <= vectorOffset else { throw PersistenceError.corrupt("header too long") }
            _ = try take(vectorOffset - offset, "padding")
        }
        let vectorStart = try take(count * dimension * 4, "vectors")
        var ids: [Int64] = []
        ids.reserveCapacity(count)
        for i in 0..<count { ids.append(try get(Int64.self, "id \(i)")) }
        let removedStart = try take(count, "tombstones")
        let removed = (0..<count).map { bytes[removedStart + $0] != 0 }
        var links: [[[Int32]]] = []
        links.reserveCapacity(count)
        for node in 0..<count {
            let layers = Int(try get(UInt8.self, "layers of node \(node)"))
            guard layers >= 1, layers <= 17 else { throw PersistenceError.corrupt("node \(node) has \(layers) layers") }
            var nodeLinks: [[Int32]] = []
            for l in 0..<layers {
                let n = Int(try get(UInt32.self, "neighbour count"))
                guard n <= (l == 0 ? 2 * m : m) else { throw PersistenceError.corrupt("node \(node) layer \(l) has \(n) neighbours") }
                var list: [Int32] = []
                list.reserveCapacity(n)
                for _ in 0..<n {
                    let neighbour = try get(UInt32.self, "neighbour")
                    guard neighbour < count, Int(neighbour) != node else { throw PersistenceError.corrupt("node \(node) links to \(neighbour)") }
                    list.append(Int32(neighbour))
                }
                nodeLinks.append(list)
            }
            links.append(nodeLinks)
        }
        guard offset == bodyCount else { throw PersistenceError.corrupt("\(bodyCount - offset) unexpected bytes") }
        // Every neighbour must have the layer it is linked on.
        for (node, layers) in links.enumerated() {
            for (l, list) in layers.enumerated() where list.contains(where: { links[Int($0)].count <= l }) {
                throw PersistenceError.corrupt("node \(node) links on layer \(l) to a node without that layer")
            }
        }
        guard count == 0 ? (entry == -1 && top == -1) : (entry >= 0 && entry < count && top == links[entry].count - 1) else {
            throw PersistenceError.corrupt("bad entry point \(entry) / top layer \(top)")
        }
        let live = zip(ids, removed).filter { !$0.1 }.map(\.0)
        guard Set(live).count == live.count else { throw PersistenceError.corrupt("duplicate live ids") }
        let vectorBytes = UnsafeRawBufferPointer(rebasing: bytes[vectorStart..<(vectorStart + count * dimension * 4)])
        if let bad = vectorBytes.bindMemoryIfAligned()?.firstIndex(where: { !$0.isFinite }) {
            throw PersistenceError.corrupt("vector value \(bad) is not finite")
        }
        let index = HNSWIndex(dimension: dimension, metric: DistanceMetric.allCases[metricIndex], m: m,
                              efConstruction: efConstruction, efSearch: efSearch)
        if version == 2 {
            // Aligned in the mapping: searched in place, the mapping kept alive by the graph.
            index.restore(Parsed(vectors: count > 0 ? vectorBytes.baseAddress!.assumingMemoryBound(to: Float.self) : nil, owner: file, ids: ids,
                                 removed: removed, links: links, entryPoint: entry, topLayer: top))
        } else {
            let copy = (0..<(count * dimension)).map { vectorBytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
            if let bad = copy.firstIndex(where: { !$0.isFinite }) { throw PersistenceError.corrupt("vector value \(bad) is not finite") }
            copy.withUnsafeBufferPointer { rows in
                index.restore(Parsed(vectors: rows.baseAddress, owner: nil, ids: ids,
                                     removed: removed, links: links, entryPoint: entry, topLayer: top))
            }
        }
        return index
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes as floats when they sit at a 4-byte boundary (always true for version 2).
    func bindMemoryIfAligned() -> UnsafeBufferPointer<Float>? {
        guard let base = baseAddress, Int(bitPattern: base) % 4 == 0 else { return nil }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count / 4)
    }
}

/// FNV-1a, 64-bit: a checksum that catches truncation and bit flips.
func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}
