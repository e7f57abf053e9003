"""The peer of `kiln bench tokenize`: Hugging Face `tokenizers`, single thread, on the same
documents. A GGUF's vocabulary is rebuilt as a tokenizers BPE model: byte-level BPE from its
merges (Digits + ByteLevel pre-tokenizers, as SmolLM2's tokenizer.json has them), and a
SentencePiece-style vocabulary (tokenizer.ggml.model llama, e.g. Gemma 3) from its scores, the
way transformers' SentencePiece converter derives merges (every split of a piece into two
pieces, ranked by the piece's score), with spaces as ▁ and byte fallback. A folder or
tokenizer.json loads directly. Prints one JSON object with the same fields as Kiln's report,
including the digest of every id, so the two runs show whether they produced the same ids.
"""
import argparse, json, os, statistics, sys, time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402


def gguf_tokenizer(path):
    import gguf

    reader = gguf.GGUFReader(path)
    field = lambda key: reader.fields[key].contents() if key in reader.fields else None
    tokens, kinds = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type")
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    model = field("tokenizer.ggml.model")
    if model == "gpt2":
        merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges")]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tok.decoder = decoders.ByteLevel()
    elif model == "llama":
        scores = field("tokenizer.ggml.scores")
        merges = []
        for piece, score in zip(tokens, scores):
            local = [(piece[:i], piece[i:], score) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
            local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
            merges.extend(local)
        merges.sort(key=lambda m: m[2], reverse=True)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for a, b, _ in merges], byte_fallback=True, fuse_unk=True,
                                   unk_token=tokens[field("tokenizer.ggml.unknown_token_id") or 0]))
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    else:
        sys.exit(f"tokenize_peer: tokenizer.ggml.model {model!r} is not rebuilt here")
    return tok


def load(path):
    if path.endswith(".gguf"):
        return gguf_tokenizer(path)
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    tok = Tokenizer.from_file(path)
    tok.no_padding()  # sentence-transformers' files pad and truncate to the model's window;
    tok.no_truncation()  # Kiln's benchmark encodes whole documents
    return tok


def documents(path, field, megabytes):
    limit, taken, docs = int(megabytes * 1e6), 0, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if taken >= limit:
                break
            line = line.rstrip("\n")
            if not line:
                continue
            doc = json.loads(line)[field] if line.startswith("{") else line
            taken += len(doc.encode())
            docs.append(doc)
    return docs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--field", default="long")
    p.add_argument("--megabytes", type=float, default=4.0)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    docs = documents(a.corpus, a.field, a.megabytes)
    tok = load(a.model)
    digest, tokens = 0xCBF29CE484222325, 0
    mask = (1 << 64) - 1
    for d in docs:
        ids = tok.encode(d, add_special_tokens=False).ids
        tokens += len(ids)
        for i in ids:
            digest = ((digest ^ i) * 0x100000001B3) & mask
        digest = ((digest ^ 0xFFFFFFFF) * 0x100000001B3) & mask
    seconds = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        for d in docs:
            tok.encode(d, add_special_tokens=False)
        seconds.append(time.perf_counter() - t0)
    med = statistics.median(seconds)
    nbytes = sum(len(d.encode()) for d in docs)
    print(json.dumps({"model": a.model, "tokenizer": "tokenizers " + __import__("tokenizers").__version__, "documents": len(docs),
                      "bytes": nbytes, "tokens": tokens, "idDigest": format(digest, "x"),
                      "seconds": {"min": min(seconds), "median": med, "max": max(seconds)},
                      "megabytesPerSecond": nbytes / 1e6 / med, "tokensPerSecond": tokens / med}))


if __name__ == "__main__":
    main()
