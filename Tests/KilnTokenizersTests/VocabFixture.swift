/// One of llama.cpp's vocab test files (fixtures/tokenizers/llama-cpp-vocab/*.json).
struct VocabFixture: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
    }

    let vocab_file: String
    let cases: [Case]
}
