import Foundation
import KilnSearch
import KilnTestSupport
import Testing

@Suite struct DocumentStoreTests {
    @Test func splitterCoversTheTextWithOverlap() {
        let text = (0..<100).map { "w\($0)" }.joined(separator: "  ")
        let passages = PassageSplitter.split(text, maxTokens: 10, overlapTokens: 3) { _ in 1 }
        #expect(passages.first?.text.hasPrefix("w0 ") == true && passages.last?.text.hasSuffix("w99") == true)
        for p in passages {
            #expect(p.text.split(separator: " ", omittingEmptySubsequences: true).count <= 10)
            #expect(String(decoding: Array(text.utf8)[p.start..<p.end], as: UTF8.self) == p.text)
        }
        for (a, b) in zip(passages, passages.dropFirst()) { #expect(b.start < a.end) }  // overlapping
    }

    @Test func storeReplacesSavesAndReopens() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var rng = SeededGenerator(seed: 81)
        let store = try DocumentStore(directory: directory, dimension: 8)
        let stamp = DocumentStore.SourceStamp(modified: 1, size: 10)
        try store.replace(source: "a.txt", stamp: stamp, passages: [.init(start: 0, end: 5, title: nil, document: nil, text: "hello"), .init(start: 6, end: 10, title: nil, document: "7", text: "world")], vectors: rng.normals(16))
        try store.replace(source: "b.txt", stamp: stamp, passages: [.init(start: 0, end: 3, title: "B", document: nil, text: "foo")], vectors: rng.normals(8))
        try store.replace(source: "a.txt", stamp: stamp, passages: [.init(start: 0, end: 4, title: nil, document: nil, text: "new!")], vectors: rng.normals(8))
        #expect(store.passages.map(\.text).sorted() == ["foo", "new!"])
        #expect(store.index.nodeCount == 4 && store.index.count == 2)  // the replaced passages are tombstones
        try store.save()
        #expect(store.index.nodeCount == 2 && store.index.count == 2)  // half the graph was dead: compacted
        try store.save()  // a second generation replaces the first
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files == ["CURRENT", "documents-2.json", "vectors-2.kiln"])
        let reopened = try DocumentStore(directory: directory, dimension: 8)
        #expect(reopened.passages == store.passages && reopened.isCurrent("a.txt", stamp))
        #expect(reopened.passages.first { $0.text == "foo" }?.title == "B")
        let hit = try reopened.index.search(rng.normals(8), k: 5)[0]
        #expect(Set(hit.map(\.id)) == Set(store.passages.map(\.id)))
        #expect { _ = try DocumentStore(directory: directory, dimension: 16) } throws: { "\($0)".contains("8-dimensional") }
    }
}
