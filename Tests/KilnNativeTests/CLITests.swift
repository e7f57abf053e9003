import Foundation
import KilnTestSupport
import Testing

/// The `kiln` executable as a user runs it: outputs, exit codes and error messages.
@Suite struct CLITests {
    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static var binary: URL { Fixtures.repositoryRoot.appendingPathComponent(".build/debug/kiln") }
    static var model: String { Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/SmolLM2-135M-Instruct.Q4_1.gguf").path }

    /// Runs kiln in the checkout (or `directory`), with the environment plus `environment`.
    static func kiln(_ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory ?? Fixtures.repositoryRoot
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// False (with a recorded failure on CI) when the binary or the model is missing.
    static func ready() -> Bool {
        for path in [binary.path, model] where !FileManager.default.fileExists(atPath: path) {
            if Fixtures.isCI { Issue.record("missing \(path)") }
            return false
        }
        return true
    }

    @Test func tokenizeAndDetokenize() throws {
        guard Self.ready() else { return }
        let json = try Self.kiln(["tokenize", "--model", Self.model, "--text", "Hello world", "--json"])
        #expect(json.status == 0)
        #expect(json.stdout == #"{"ids":[19556,905],"pieces":["Hello","Ġworld"]}"# + "\n")
        let text = try Self.kiln(["detokenize", "--model", Self.model, "--ids", "19556,905,2"])
        #expect(text.stdout == "Hello world<|im_end|>\n")
        let dropped = try Self.kiln(["detokenize", "--model", Self.model, "--ids", "19556,905,2", "--skip-special"])
        #expect(dropped.stdout == "Hello world\n")
    }

    /// `kiln info MODEL.gguf` reads the tensor table: SmolLM2 Q4_1 has 210 Q4_1 tensors, one Q8_0 and
    /// 61 F32 (as llama.cpp's loader lists them), 134.5M weights, and Kiln runs it; a file that is
    /// not GGUF is refused by name.
    @Test func infoDescribesAModel() throws {
        guard Self.ready() else { return }
        let info = try Self.kiln(["info", Self.model])
        #expect(info.status == 0)
        for line in ["architecture    llama", "parameters      134.5M", "Q4_1      210 tensors", "Q8_0        1 tensors",
                     "context length  8192", "vocabulary      49152 (gpt2)", "chat template   yes", "Kiln runs it    yes"] {
            #expect(info.stdout.contains(line), "missing \(line) in\n\(info.stdout)")
        }
        let notModel = try Self.kiln(["info", "README.md"])
        #expect(notModel.status == 1 && notModel.stderr.contains("README.md: not a GGUF file"))
    }

    /// `kiln quantize`: a Q8_0 file like llama-quantize's (its recorded sha256), and refusals that
    /// name the problem and leave nothing behind: the input as output, an unknown type, a quantized
    /// input without --allow-requantize, a truncated input.
    @Test func quantizeWritesLlamaQuantizesFileAndRefusesBadRequests() throws {
        guard Self.ready() else { return }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-quantize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("q8.gguf").path
        let done = try Self.kiln(["quantize", Self.model, out, "q8_0", "--allow-requantize", "--threads", "2", "--json"])
        #expect(done.status == 0, "\(done.stderr)")
        #expect(done.stdout.contains(#""tensor_types":{"F32":61,"Q8_0":211}"#), "\(done.stdout)")
        struct Recorded: Decodable { let file_sha256: String }
        let recorded = try JSONDecoder().decode(Recorded.self, from: Data(contentsOf: Fixtures.url("quants/quant-Q8_0.json")))
        let sha = Process()
        sha.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sha.arguments = [out]
        let pipe = Pipe()
        sha.standardOutput = pipe
        try sha.run()
        sha.waitUntilExit()
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix(recorded.file_sha256))

        let link = directory.appendingPathComponent("link.gguf").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: Self.model)
        let same = try Self.kiln(["quantize", Self.model, link, "Q8_0", "--allow-requantize"])
        #expect(same.status == 1 && same.stderr.contains("is the input file"), "\(same.stderr)")
        let unknown = try Self.kiln(["quantize", Self.model, out + ".x", "Q9_K"])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown type \"Q9_K\""))
        let requantize = try Self.kiln(["quantize", Self.model, out + ".x", "Q4_K_M"])
        #expect(requantize.status == 1 && requantize.stderr.contains("is already Q4_1") && requantize.stderr.contains("--allow-requantize"))
        let truncated = directory.appendingPathComponent("truncated.gguf")
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: Self.model)).readData(ofLength: 4_000_000)
        try head.write(to: truncated)
        let cut = try Self.kiln(["quantize", truncated.path, out + ".x", "Q8_0", "--allow-requantize"])
        #expect(cut.status == 1 && cut.stderr.contains("truncated"), "\(cut.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(left == ["link.gguf", "q8.gguf", "truncated.gguf"], "files left behind: \(left)")
    }

    @Test func badInputIsAnErrorWithAMessage() throws {
        guard Self.ready() else { return }
        let outside = try Self.kiln(["detokenize", "--model", Self.model, "--ids", "5,99999999"])
        #expect(outside.status == 1 && outside.stderr.contains("outside the vocabulary of 49152"))
        let invalid = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).txt")
        try Data([0x66, 0xFF, 0xFE]).write(to: invalid)
        defer { try? FileManager.default.removeItem(at: invalid) }
        let utf8 = try Self.kiln(["tokenize", "--model", Self.model, "--file", invalid.path])
        #expect(utf8.status == 1 && utf8.stderr.contains("not valid UTF-8"))
        let notModel = try Self.kiln(["generate", "--model", invalid.path, "--prompt", "hi"])
        #expect(notModel.status == 1 && notModel.stderr.contains("truncated GGUF: magic"))
        let usage = try Self.kiln(["generate", "--prompt", "a", "--prompt-tokens", "1"])
        #expect(usage.status != 0 && usage.stderr.contains("exactly one of"))
        let emptyQuery = try Self.kiln(["search", "   "])
        #expect(emptyQuery.status != 0 && emptyQuery.stderr.contains("the query is empty"))
        let noModel = try Self.kiln(["embed", "--text", "hi", "--model", "/nonexistent/model"])
        #expect(noModel.status == 1 && noModel.stderr.contains("model /nonexistent/model not found"))
        let notVectors = try Self.kiln(["bench", "search", "--vectors", invalid.path])
        #expect(notVectors.status == 1 && notVectors.stderr.contains(invalid.path))
        let notCorpus = try Self.kiln(["bench", "tokenize", "--model", Self.model, "--corpus", invalid.path])
        #expect(notCorpus.status == 1 && notCorpus.stderr.contains("not valid UTF-8"))
        let lines = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).jsonl")
        try Data("{\"long\": \"a kiln\"}\n{\"short\": 3}\n".utf8).write(to: lines)
        defer { try? FileManager.default.removeItem(at: lines) }
        let noField = try Self.kiln(["bench", "tokenize", "--model", Self.model, "--corpus", lines.path])
        #expect(noField.status == 1 && noField.stderr.contains("line 2 has no string field \"long\""), "\(noField.stderr)")
    }

    @Test func generateGreedyFollowsTheLogits() throws {
        guard Self.ready() else { return }
        // "The capital of France is": llama.cpp's argmax for the next token is 7042 (" Paris").
        let run = try Self.kiln(["generate", "--model", Self.model, "--prompt-tokens", "504,3575,282,4649,314",
                                 "--temperature", "0", "--max-tokens", "2", "--json", "--context", "64"])
        #expect(run.status == 0, "\(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        #expect((object?["tokens"] as? [Int])?.first == 7042)
        #expect((object?["text"] as? String)?.hasPrefix(" Paris") == true)
        #expect(object?["stop_reason"] as? String == "length")
    }

    @Test func logitsOutWritesTheLastPromptPosition() throws {
        guard Self.ready() else { return }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString).bin").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try Self.kiln(["generate", "--model", Self.model, "--prompt-tokens", "504,3575,282,4649,314",
                                 "--temperature", "0", "--max-tokens", "1", "--context", "64", "--logits-out", path])
        #expect(run.status == 0, "\(run.stderr)")
        let logits = try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(logits.count == 49152)
        #expect(logits.indices.max { logits[$0] < logits[$1] } == 7042)  // llama.cpp's argmax for this prompt
    }

    @Test func embedPrintsUnitVectors() throws {
        guard Self.ready() else { return }
        let folder = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2").path
        let run = try Self.kiln(["embed", "--model", folder, "--text", "A kiln fires clay", "Pottery", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        #expect(object?["dimension"] as? Int == 384)
        let vectors = object?["embeddings"] as? [[Double]] ?? []
        #expect(vectors.count == 2)
        for v in vectors { #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4) }
        let missing = try Self.kiln(["embed", "--model", "/nonexistent", "--text", "x"])
        #expect(missing.status == 1 && missing.stderr.contains("model /nonexistent not found"))
    }

    @Test func indexAndSearchDocuments() throws {
        guard Self.ready() else { return }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-docs-\(UUID().uuidString)")
        let docs = root.appendingPathComponent("docs"), index = root.appendingPathComponent("index").path
        try FileManager.default.createDirectory(at: docs.appendingPathComponent("sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try "Pottery is fired in a kiln at high temperature.".write(to: docs.appendingPathComponent("kiln.md"), atomically: true, encoding: .utf8)
        try "The Swift language compiles to native code.".write(to: docs.appendingPathComponent("sub/swift.txt"), atomically: true, encoding: .utf8)
        try Data([0x62, 0, 0x6E]).write(to: docs.appendingPathComponent("sub/blob.txt"))
        let model = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2").path
        let add = try Self.kiln(["index", "add", docs.path, "--index", index, "--model", model])
        #expect(add.status == 0 && add.stdout.contains("indexed 2 passages") && add.stderr.contains("skipping"), "\(add.stdout)\(add.stderr)")
        let search = try Self.kiln(["search", "how hot does a kiln get", "--index", index, "--model", model, "-k", "2", "--json"])
        let lists = try JSONSerialization.jsonObject(with: Data(search.stdout.utf8)) as? [[[String: Any]]]
        #expect((lists?.first?.first?["source"] as? String)?.hasSuffix("kiln.md") == true, "\(search.stdout)\(search.stderr)")
        let exact = try Self.kiln(["search", "compiled programming language", "--index", index, "--model", model, "-k", "1", "--exact"])
        #expect(exact.status == 0 && exact.stdout.contains("swift.txt"))
        let none = try Self.kiln(["search", "x", "--index", root.appendingPathComponent("none").path, "--model", model])
        #expect(none.status == 1 && none.stderr.contains("no index"))
    }

    /// Models are found from any folder: by name in KILN_MODELS, then in the checkout's
    /// Checkpoints/ (found from the executable); a missing one names where it looked and how to
    /// get it.
    @Test func modelsAreFoundFromAnyFolder() throws {
        guard Self.ready() else { return }
        let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-elsewhere-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        let byDefault = try Self.kiln(["tokenize", "--text", "Hello world", "--json"], in: elsewhere)
        #expect(byDefault.status == 0 && byDefault.stdout.contains("[19556,905]"), "\(byDefault.stdout)\(byDefault.stderr)")
        let models = elsewhere.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: models.appendingPathComponent("mini"),
                                                   withDestinationURL: Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2"))
        let named = try Self.kiln(["embed", "--model", "mini", "--text", "kilns", "--json"], in: elsewhere, environment: ["KILN_MODELS": models.path])
        #expect(named.status == 0 && named.stdout.contains("\"dimension\":384"), "\(named.stdout)\(named.stderr)")
        let missing = try Self.kiln(["generate", "--model", "nope.gguf", "--prompt", "x"], in: elsewhere, environment: ["KILN_MODELS": models.path])
        #expect(missing.status != 0 && missing.stderr.contains("model nope.gguf not found") && missing.stderr.contains(models.path)
                && missing.stderr.contains("scripts/setup"), "\(missing.stderr)")
    }

    /// An index records the embedding model that built it: later commands use it without
    /// --model, and refuse a different one.
    @Test func indexKeepsItsEmbeddingModel() throws {
        guard Self.ready() else { return }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("other"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let index = root.appendingPathComponent("index").path, doc = root.appendingPathComponent("kiln.md")
        try "Pottery is fired in a kiln at high temperature.".write(to: doc, atomically: true, encoding: .utf8)
        try Data("not the same weights".utf8).write(to: root.appendingPathComponent("other/model.safetensors"))
        let add = try Self.kiln(["index", "add", doc.path, "--index", index])
        #expect(add.status == 0, "\(add.stderr)")
        let stats = try Self.kiln(["index", "stats", "--index", index])
        #expect(stats.stdout.contains("model       all-MiniLM-L6-v2 (sha256 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db)"), "\(stats.stdout)")
        let search = try Self.kiln(["search", "kiln", "--index", index, "--json"], in: root)
        #expect(search.status == 0 && search.stdout.contains("kiln.md"), "\(search.stdout)\(search.stderr)")
        let other = try Self.kiln(["search", "kiln", "--index", index, "--model", root.appendingPathComponent("other").path])
        #expect(other.status != 0 && other.stderr.contains("was built with the embedding model all-MiniLM-L6-v2"), "\(other.stderr)")
    }

    /// A save killed with SIGKILL while it writes (at the first, second and third temporary file
    /// of the new generation) leaves the previous index loadable and searchable; a later add
    /// still succeeds.
    @Test func indexSurvivesASaveKilledMidWrite() throws {
        guard Self.ready() else { return }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-crash-\(UUID().uuidString)")
        let index = root.appendingPathComponent("index").path
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let model = Fixtures.repositoryRoot.appendingPathComponent("Checkpoints/all-MiniLM-L6-v2").path
        try "Pottery is fired in a kiln.".write(to: root.appendingPathComponent("first.md"), atomically: true, encoding: .utf8)
        let first = try Self.kiln(["index", "add", root.appendingPathComponent("first.md").path, "--index", index, "--model", model])
        #expect(first.status == 0, "\(first.stderr)")
        // Enough records that writing the new generation takes a while.
        let records = (0..<300).map { "{\"id\": \($0), \"text\": \"note \($0) about glazes, clay bodies and firing schedules\"}" }
        try records.joined(separator: "\n").write(to: root.appendingPathComponent("many.jsonl"), atomically: true, encoding: .utf8)
        var killedMidWrite = 0
        for stage in 1...3 {
            let process = Process()
            process.executableURL = Self.binary
            process.arguments = ["index", "add", root.appendingPathComponent("many.jsonl").path, "--index", index, "--model", model]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var seen = Set<String>()
            while process.isRunning {
                let partial = (try? FileManager.default.contentsOfDirectory(atPath: index))?.filter { $0.contains(".partial-") } ?? []
                seen.formUnion(partial)
                if seen.count >= stage {
                    kill(process.processIdentifier, SIGKILL)
                    break
                }
                usleep(100)
            }
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { killedMidWrite += 1 }
            let stats = try Self.kiln(["index", "stats", "--index", index])
            #expect(stats.status == 0, "after a kill at stage \(stage): \(stats.stderr)")
            let search = try Self.kiln(["search", "kiln", "--index", index, "--model", model, "--json"])
            #expect(search.status == 0 && search.stdout.contains("first.md"), "stage \(stage): \(search.stdout)\(search.stderr)")
        }
        #expect(killedMidWrite >= 1, "no save was caught while writing")
        let again = try Self.kiln(["index", "add", root.appendingPathComponent("many.jsonl").path, "--index", index, "--model", model])
        #expect(again.status == 0 && again.stdout.contains("301 passages"), "\(again.stdout)\(again.stderr)")
        // Hits from JSON lines carry the record's own id.
        let notes = try Self.kiln(["search", "note 12 about glazes", "--index", index, "--model", model, "--json", "-k", "3"])
        let lists = try JSONSerialization.jsonObject(with: Data(notes.stdout.utf8)) as? [[[String: Any]]]
        #expect(lists?.first?.contains { ($0["document"] as? String) == "12" } == true, "\(notes.stdout)")
    }

    @Test func chatTemplateRendersAConversation() throws {
        guard Self.ready() else { return }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let messages = directory.appendingPathComponent("m.json")
        try Data(#"[{"role": "user", "content": "Hi"}]"#.utf8).write(to: messages)
        let run = try Self.kiln(["chat-template", "--model", Self.model, "--messages", messages.path])
        #expect(run.stdout == """
            <|im_start|>system
            You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
            <|im_start|>user
            Hi<|im_end|>
            <|im_start|>assistant

            """)
    }
}
