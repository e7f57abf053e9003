import Foundation
import KilnFormats
import KilnKernels
import KilnTestSupport
import KilnTransformer
import Testing

/// Checks of a pretrained model against what llama.cpp recorded on the same file: last-position
/// logits bit for bit, and greedy continuations token for token.
enum LlamaCppRecording {
    /// The model at `path` (a Checkpoints/ file `scripts/setup` fetches), or nil with a recorded
    /// issue in CI when it is missing.
    static func model(at path: String, contextSize: Int, batchSize: Int) throws -> DecoderSequence? {
        guard FileManager.default.fileExists(atPath: path) else {
            if Fixtures.isCI { Issue.record("model file missing: \(path) (run scripts/setup)") }
            return nil
        }
        return try DecoderSequence(file: try GGUFFile(path: path), contextSize: contextSize, batchSize: batchSize)
    }

    struct LogitsCase: Decodable {
        let prompt_ids: [Int]
        let file: String
        let argmax: Int
    }

    /// The logits after the prompt of `directory`/`name`.json equal the floats of its .bin.
    static func expectLogits(of model: DecoderSequence, directory: URL, name: String) throws {
        let meta = try JSONDecoder().decode(LogitsCase.self, from: Data(contentsOf: directory.appendingPathComponent("\(name).json")))
        let expected = try Data(contentsOf: directory.appendingPathComponent(meta.file)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        try model.forward(meta.prompt_ids, startPosition: 0)
        let logits = Array(model.logits)
        #expect(logits.count == expected.count)
        #expect(VectorOps.argmax(UnsafeBufferPointer(model.logits), count: logits.count) == meta.argmax)
        let differing = zip(logits, expected).filter { $0.bitPattern != $1.bitPattern }.count
        let worst = zip(logits, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(differing == 0, "\(name): \(differing) of \(logits.count) logits differ, by up to \(worst)")
    }

    struct GreedyCase: Decodable {
        let id: String
        let prompt_ids: [Int]
        let generated_ids: [Int]
        let step_margins: [Double]
    }

    struct GreedyFixture: Decodable { let cases: [GreedyCase] }

    /// Greedy ids from `prompt` as llama.cpp produced them: the prompt in one call, then one
    /// token per call, end-of-generation tokens fed back unless `stopAt` holds them.
    static func greedy(_ model: DecoderSequence, prompt: [Int], steps: Int, stopAt: Set<Int> = []) throws -> [Int] {
        try model.forward(prompt, startPosition: 0)
        var generated: [Int] = []
        for _ in 0..<steps {
            let next = VectorOps.argmax(UnsafeBufferPointer(model.logits), count: model.logits.count)
            generated.append(next)
            if stopAt.contains(next) { break }
            try model.forward([next], startPosition: prompt.count + generated.count - 1)
        }
        return generated
    }

    /// Every continuation of `fixture` equals llama.cpp's greedy ids. A split would be allowed only
    /// where llama.cpp's own top-1 − top-2 margin is below 0.1 (a genuine near-tie) and is printed.
    static func expectGreedy(of model: DecoderSequence, fixture url: URL) throws {
        let fixture = try JSONDecoder().decode(GreedyFixture.self, from: Data(contentsOf: url))
        var nearTies: [String] = []
        for c in fixture.cases {
            let generated = try greedy(model, prompt: c.prompt_ids, steps: c.generated_ids.count)
            if let split = generated.indices.first(where: { generated[$0] != c.generated_ids[$0] }) {
                #expect(c.step_margins[split] < 0.1, "\(c.id): differs at step \(split) where llama.cpp's margin is \(c.step_margins[split])")
                nearTies.append("\(c.id) step \(split) (margin \(c.step_margins[split]))")
            }
        }
        print("greedy \(url.lastPathComponent): \(fixture.cases.count - nearTies.count) of \(fixture.cases.count) identical; near-tie splits: \(nearTies)")
    }
}
