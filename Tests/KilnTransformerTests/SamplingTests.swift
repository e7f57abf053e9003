import KilnTransformer
import Testing

/// The sampler chain on small hand-made logits, with the random draw chosen by the test.
@Suite struct SamplingTests {
    func sample(_ logits: [Float], _ p: SamplingParameters, _ u: Double) -> Int {
        logits.withUnsafeBufferPointer { Sampler.sample($0, p, uniform: u) }
    }

    @Test func greedyAndTopKOneTakeTheArgmax() {
        let logits: [Float] = [0.1, 3, 2.9, -1]
        #expect(sample(logits, .greedy, 0.99) == 1)
        var p = SamplingParameters()
        p.topK = 1
        #expect(sample(logits, p, 0.99) == 1)
    }

    @Test func drawFollowsTheProbabilities() {
        // Two tokens with logits ln 3 and 0 at temperature 1: probabilities ¾ and ¼.
        var p = SamplingParameters()
        (p.temperature, p.topK, p.topP, p.minP) = (1, 0, 1, 0)
        let logits: [Float] = [0, Float(1.0986123)]
        #expect(sample(logits, p, 0.74) == 1)
        #expect(sample(logits, p, 0.76) == 0)
    }

    @Test func topPAndMinPCutTheTail() {
        var p = SamplingParameters()
        (p.temperature, p.topK) = (1, 0)
        let logits: [Float] = [5, 4.9, 0, -1]  // the last two hold ~1% together
        (p.topP, p.minP) = (0.9, 0)
        for u in stride(from: 0.0, to: 1.0, by: 0.05) { #expect(sample(logits, p, u) < 2) }
        (p.topP, p.minP) = (1, 0.5)  // keeps tokens with probability ≥ ½ of the top one
        for u in stride(from: 0.0, to: 1.0, by: 0.05) { #expect(sample(logits, p, u) < 2) }
    }

    @Test func penaltiesByHand() {
        var logits: [Float] = [2, -2, 1]
        var p = SamplingParameters.greedy
        (p.repetitionPenalty, p.presencePenalty, p.frequencyPenalty) = (2, 0.5, 0.25)
        logits.withUnsafeMutableBufferPointer { Sampler.applyPenalties($0, history: [0, 0, 1][...], p) }
        // token 0 seen twice: 2/2 − (2·0.25 + 0.5) = 0; token 1 once: −2·2 − (0.25 + 0.5) = −4.75
        #expect(logits == [0, -4.75, 1])
    }
}
