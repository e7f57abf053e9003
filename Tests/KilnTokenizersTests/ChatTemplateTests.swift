import Foundation
import KilnTestSupport
import KilnTokenizers
import Testing

/// The Jinja engine against 36 real chat templates rendered by jinja2 as transformers does it.
@Suite struct ChatTemplateTests {
    struct Render: Decodable {
        struct Failure: Decodable { let message: String }
        let conversation_id: String
        let add_generation_prompt: Bool
        let bos_token: String
        let eos_token: String
        let output: String?
        let error: Failure?
    }

    struct Fixture: Decodable {
        let name: String
        let template: String
        let conversations: [String: [ChatTemplate.Message]]
        let renders: [Render]
    }

    static let directory = Fixtures.url("chat-templates")
    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// 2025-03-14 09:26:53 in the local time zone, the clock the fixtures were rendered with.
    static var fixedNow: Date {
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (2025, 3, 14, 9, 26, 53)
        return Calendar.current.date(from: c)!
    }

    @Test func fixturesArePresent() {
        #expect(Self.names.count == 36)
    }

    @Test(arguments: names) func rendersLikeTransformers(name: String) throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.directory.appendingPathComponent("\(name).json")))
        let template = try ChatTemplate(fixture.template)
        for render in fixture.renders {
            let messages = try #require(fixture.conversations[render.conversation_id])
            let label = "\(name) \(render.conversation_id) gen=\(render.add_generation_prompt)"
            do {
                let output = try template.render(messages: messages, addGenerationPrompt: render.add_generation_prompt,
                                                 bosToken: render.bos_token, eosToken: render.eos_token, now: Self.fixedNow)
                if let expected = render.output {
                    if output != expected {
                        let prefix = zip(output, expected).prefix { $0 == $1 }.count
                        Issue.record("\(label): differs at character \(prefix)\n  got  \(String(output.dropFirst(max(0, prefix - 40)).prefix(120)).debugDescription)\n  want \(String(expected.dropFirst(max(0, prefix - 40)).prefix(120)).debugDescription)")
                    }
                } else {
                    Issue.record("\(label): rendered, but jinja2 fails with \(render.error?.message ?? "an error")")
                }
            } catch {
                if render.output != nil { Issue.record("\(label): \(error)") }
            }
        }
    }

    @Test func smallTemplatesByHand() throws {
        func render(_ source: String, _ messages: [ChatTemplate.Message] = []) throws -> String {
            try ChatTemplate(source).render(messages: messages, addGenerationPrompt: true)
        }
        #expect(try render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ 7 / 2 }}|{{ -3 % 5 }}") == "7|3|3.5|2")
        #expect(try render("{{ [1, 2, 3][-1] }}{{ 'abc'[1:] }}{{ none }}{{ true }}") == "3bcNoneTrue")
        #expect(try render("{% for x in [1,2,3] %}{{ loop.index }}{% if not loop.last %},{% endif %}{% endfor %}") == "1,2,3")
        #expect(try render("{% set ns = namespace(n=0) %}{% for x in 'ab' %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}") == "2")
        #expect(try render("{{ {'a': [1, 'é']}|tojson }}") == #"{"a": [1, "é"]}"#)
        #expect(try render("{% macro m(x, y='!') %}{{ x ~ y }}{% endmacro %}{{ m('hi') }}") == "hi!")
        #expect(try render("  {% if true %}\n  x\n  {% endif %}\n") == "  x\n")
        #expect(try render("{{ undefined_thing }}{{ undefined_thing is defined }}") == "False")
        #expect { try render("{{ undefined_thing.attr }}") } throws: { "\($0)".contains("undefined") }
        #expect { try render("{{ raise_exception('nope') }}") } throws: { "\($0)" == "nope" }
        #expect { try render("{% for x in range(100000000) %}{% endfor %}") } throws: { "\($0)".contains("range") }
        #expect { try render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}") } throws: { "\($0)".contains("nested deeper") }
        #expect { try render("{% if %}") } throws: { "\($0)".contains("syntax") }
        // A dict literal's keys keep their type: numbers sort and compare as numbers.
        #expect(try render("{% for k, v in {512: 1, 0: 2, 64: 3}|dictsort %}{% if 100 <= k %}{{ k }}:{{ v }} {% endif %}{% endfor %}") == "512:1 ")
        #expect(try render("{{ {0: 'a'}[0] }}{{ {1: 2}.keys()|list }}{{ {1: 2} }}") == "a[1]{1: 2}")
        // jinja2 selects nothing from a falsy value, so `tools|selectattr(…)` works while tools is None.
        #expect(try render("{% set tools = none %}{{ tools|selectattr('type', 'equalto', 'x')|list|length }}{{ none|reject|list }}") == "0[]")
    }
}
