import Foundation
import KilnFormats

/// The on-disk form of an HNSW index: one file, written atomically (temporary file, fsync,
/// rename), so a crash during a save always leaves the previous index readable.
///
///     "KILNHNSW" · version u32 (1) · metric u8 · dimension u32 · m u32 · efConstruction u32 ·
///     efSearch u32 · entry i64 · top layer i32 · count u64 ·
///     vectors f32 × count × dimension · ids i64 × count · removed u8 × count ·
///     per node: layers u8, then per layer: neighbour count u32 and neighbours u32 × that ·
///     FNV-1a 64 checksum of everything before it
///
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

    public func save(to path: String) throws {
        var out = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        out.append(contentsOf: Self.magic)
        put(UInt32(1))
        put(UInt8(DistanceMetric.allCases.firstIndex(of: metric)!))
        put(UInt32(dimension)); put(UInt32(m)); put(UInt32(efConstruction)); put(UInt32(efSearch))
        let state = snapshot()
        put(Int64(state.entryPoint)); put(Int32(state.topLayer)); put(UInt64(state.ids.count))
        state.vectors.withUnsafeBytes { out.append(contentsOf: $0) }  // little-endian hosts only (x86-64, arm64)
        for id in state.ids { put(id) }
        out.append(contentsOf: state.removed.map { $0 ? UInt8(1) : 0 })
        for layers in state.links {
            put(UInt8(layers.count))
            for neighbours in layers {
                put(UInt32(neighbours.count))
                for n in neighbours { put(UInt32(n)) }
            }
        }
        put(fnv1a(out))
        do {
            try DurableFile.write(out, to: path)
        } catch {
            throw PersistenceError.cannotWrite("\(error)")
        }
    }

    public static func load(from path: String) throws -> HNSWIndex {
        guard let data = FileManager.default.contents(atPath: path) else { throw PersistenceError.corrupt("cannot read \(path)") }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 + 8 else { throw PersistenceError.corrupt("\(bytes.count) bytes is too short") }
        let body = bytes[0..<(bytes.count - 8)]
        var offset = 0
        func take(_ n: Int, _ field: String) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= body.count - offset else { throw PersistenceError.corrupt("\(field) runs past the end") }
            defer { offset += n }
            return body[offset..<(offset + n)]
        }
        func get<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
            let raw = try take(MemoryLayout<T>.size, field)
            return raw.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
        }
        guard Array(try take(8, "magic")) == magic else { throw PersistenceError.corrupt("not a Kiln HNSW index") }
        let version = try get(UInt32.self, "version")
        guard version == 1 else { throw PersistenceError.corrupt("version \(version) is not supported") }
        let stored = bytes[(bytes.count - 8)...].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard stored == fnv1a(Data(body)) else { throw PersistenceError.corrupt("checksum mismatch") }
        let metricIndex = Int(try get(UInt8.self, "metric"))
        guard metricIndex < DistanceMetric.allCases.count else { throw PersistenceError.corrupt("unknown metric \(metricIndex)") }
        let dimension = Int(try get(UInt32.self, "dimension")), m = Int(try get(UInt32.self, "m"))
        let efConstruction = Int(try get(UInt32.self, "efConstruction")), efSearch = Int(try get(UInt32.self, "efSearch"))
        guard dimension > 0, dimension <= 1 << 16, m >= 2, m <= 1024, efConstruction >= 1, efSearch >= 1 else {
            throw PersistenceError.corrupt("implausible parameters")
        }
        let entry = Int(try get(Int64.self, "entry point")), top = Int(try get(Int32.self, "top layer"))
        let count64 = try get(UInt64.self, "count")
        guard count64 <= UInt64(body.count / (dimension * 4 + 9)) else { throw PersistenceError.corrupt("count \(count64) cannot fit in the file") }
        let count = Int(count64)
        let vectorBytes = try take(count * dimension * 4, "vectors")
        let vectors = vectorBytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var ids: [Int64] = []
        for i in 0..<count { ids.append(try get(Int64.self, "id \(i)")) }
        let removed = try take(count, "tombstones").map { $0 != 0 }
        var links: [[[Int32]]] = []
        for node in 0..<count {
            let layers = Int(try get(UInt8.self, "layers of node \(node)"))
            guard layers >= 1, layers <= 17 else { throw PersistenceError.corrupt("node \(node) has \(layers) layers") }
            var nodeLinks: [[Int32]] = []
            for l in 0..<layers {
                let n = Int(try get(UInt32.self, "neighbour count"))
                guard n <= 2 * m + 1 else { throw PersistenceError.corrupt("node \(node) layer \(l) has \(n) neighbours") }
                var list: [Int32] = []
                for _ in 0..<n {
                    let neighbour = try get(UInt32.self, "neighbour")
                    guard neighbour < count, Int(neighbour) != node else { throw PersistenceError.corrupt("node \(node) links to \(neighbour)") }
                    list.append(Int32(neighbour))
                }
                nodeLinks.append(list)
            }
            links.append(nodeLinks)
        }
        guard offset == body.count else { throw PersistenceError.corrupt("\(body.count - offset) unexpected bytes") }
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
        let index = HNSWIndex(dimension: dimension, metric: DistanceMetric.allCases[metricIndex], m: m,
                              efConstruction: efConstruction, efSearch: efSearch)
        index.restore(Snapshot(vectors: vectors, ids: ids, removed: removed, links: links, entryPoint: entry, topLayer: top))
        return index
    }
}

/// FNV-1a, 64-bit: a checksum that catches truncation and bit flips.
func fnv1a(_ data: Data) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in data {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}
