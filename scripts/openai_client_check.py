"""Kiln's server through the official `openai` Python client: every route the client knows,
answers checked against `kiln` itself (greedy completions from `kiln generate`, embeddings from
`kiln embed`, images from `kiln sample`), and errors raised as the client's typed exceptions.
Run by scripts/check-openai-client, which starts the server and passes its URL and the binary."""
import base64
import json
import subprocess
import sys

import openai

url, kiln = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=url + "/v1", api_key="kiln-check", max_retries=0)
failures = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"))
    if not condition:
        failures.append(name)


def kiln_json(*args):
    return json.loads(subprocess.run([kiln, *args, "--json"], check=True, capture_output=True, text=True).stdout)


models = [m.id for m in client.models.list().data]
check("models lists every model", {"SmolLM2-135M-Instruct.Q4_1", "all-MiniLM-L6-v2", "kiln-vae", "kiln-gan"} <= set(models), models)

# Chat: the same greedy reply as `kiln generate --chat`, whole and streamed.
prompt = "Name three colours."
expected = kiln_json("generate", "--chat", "--prompt", prompt, "--max-tokens", "24", "--temperature", "0")["text"]
chat = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=[{"role": "user", "content": prompt}],
                                      max_tokens=24, temperature=0)
check("chat equals kiln generate --chat", chat.choices[0].message.content == expected, (chat.choices[0].message.content, expected))
check("chat usage", chat.usage.completion_tokens > 0 and chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens)
pieces, usage, finish = [], None, None
for chunk in client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=[{"role": "user", "content": prompt}],
                                            max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True}):
    if chunk.choices:
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage
check("streamed chat equals the whole reply", "".join(pieces) == expected, ("".join(pieces), expected))
check("stream ends with a finish reason and usage", finish in ("stop", "length") and usage is not None and usage.completion_tokens == chat.usage.completion_tokens)

# Log-probabilities: one entry per generated token, greedy's token the most likely.
scored = client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=[{"role": "user", "content": prompt}],
                                        max_tokens=8, temperature=0, logprobs=True, top_logprobs=2)
entries = scored.choices[0].logprobs.content
check("logprobs per token", len(entries) == scored.usage.completion_tokens and all(
    e.logprob <= 0 and len(e.top_logprobs) == 2 and e.top_logprobs[0].token == e.token for e in entries))
check("logprobs' tokens spell the reply", "".join(e.token for e in entries) == scored.choices[0].message.content,
      ("".join(e.token for e in entries), scored.choices[0].message.content))

# Text completion.
expected = kiln_json("generate", "--prompt", "The capital of France is", "--max-tokens", "12", "--temperature", "0")["text"]
completion = client.completions.create(model="SmolLM2-135M-Instruct.Q4_1", prompt="The capital of France is", max_tokens=12, temperature=0)
check("completion equals kiln generate", completion.choices[0].text == expected, (completion.choices[0].text, expected))

# Embeddings (the client asks for base64 and decodes it) against `kiln embed`.
texts = ["Pottery is fired in a kiln.", "Swift compiles to native code."]
got = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
vectors = kiln_json("embed", "--text", texts[0], "--text", texts[1])["embeddings"]
worst = max(abs(a - b) for e, v in zip(got.data, vectors) for a, b in zip(e.embedding, v))
check("embeddings equal kiln embed", len(got.data) == 2 and worst < 1e-5, worst)

# Images: PNGs with Kiln's parameters chunk, the same bytes for the same seed.
for model in ("kiln-vae", "kiln-gan"):
    images = client.images.generate(model=model, prompt="", n=2, response_format="b64_json", extra_body={"seed": 3})
    pngs = [base64.b64decode(d.b64_json) for d in images.data]
    again = [base64.b64decode(d.b64_json) for d in client.images.generate(model=model, prompt="", n=2, response_format="b64_json",
                                                                          extra_body={"seed": 3}).data]
    check(f"{model} draws PNGs", len(pngs) == 2 and all(p.startswith(b"\x89PNG\r\n\x1a\n") and b"parameters" in p for p in pngs))
    check(f"{model} is reproducible by seed", pngs == again)

# Errors arrive as the client's exceptions, with OpenAI's error body.
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    check("unknown model is a 404", False, "no error")
except openai.NotFoundError as error:
    check("unknown model is a 404", error.status_code == 404 and "gpt-4o" in str(error))
try:
    client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=[{"role": "user", "content": "kiln " * 3000}])
    check("an over-long prompt is a 400", False, "no error")
except openai.BadRequestError as error:
    check("an over-long prompt is a 400", error.status_code == 400 and "context" in str(error), str(error))
try:
    client.embeddings.create(model="all-MiniLM-L6-v2", input=[])
    check("empty input is a 400", False, "no error")
except openai.BadRequestError as error:
    check("empty input is a 400", error.status_code == 400)

if failures:
    print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("all checks passed")
