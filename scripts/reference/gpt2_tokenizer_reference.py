#!/usr/bin/env python3
"""Independent GPT-2 byte-level BPE, from vocab.json and merges.txt only (the algorithm of OpenAI's
gpt-2 encoder.py, which the Rust `tokenizers` ByteLevel pre-tokenizer + BPE model reproduce):
special tokens (`<|endoftext|>`) are split out first, the text is cut with GPT-2's regex, each
piece's UTF-8 bytes are mapped to printable characters (bytes_to_unicode) and merged by rank.

(run `npm run format` after regenerating)

usage: gpt2_tokenizer_reference.py MODEL_DIR > ids.json   (needs the `regex` module for \\p{L})
"""
import json
import os
import sys

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIAL = "<|endoftext|>"

STRINGS = [
    "Hello, world!",
    "The cat's hat isn't John's; they'll say we've done it.",
    "  two leading spaces,   three inner spaces and a trailing one ",
    "numbers 1234567 and 3.14159, plus tabs\tand\nnewlines\n\n",
    "naïve café — déjà vu, Ünïcödé, 日本語のテキスト, emoji 🤗🚀!",
    "<|endoftext|>Once upon a time<|endoftext|> there was",
    "x=y+z*(a-b)/c; // C++ `code` {braces} [brackets] #hash @at $5 %d ^_^ ~tilde|pipe\\",
    "'S 'LL 'Ve capitals are not contractions, but 's 't 're 'm 'd are",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main(model_dir):
    with open(os.path.join(model_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(model_dir, "merges.txt"), encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#version")]
    ranks = {tuple(l.split(" ")): i for i, l in enumerate(lines)}
    byte_map = bytes_to_unicode()

    def bpe(word):
        parts = list(word)
        while len(parts) > 1:
            pairs = [(ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, at = min(pairs)  # the best-ranked bigram (encoder.py's `min(pairs, key=ranks)`)
            if rank == float("inf"):
                break
            first, second = parts[at], parts[at + 1]
            merged = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(text):
        ids = []
        chunks = text.split(SPECIAL)
        for k, chunk in enumerate(chunks):
            if k > 0:
                ids.append(vocab[SPECIAL])
            for piece in PATTERN.findall(chunk):
                word = "".join(byte_map[b] for b in piece.encode("utf-8"))
                ids.extend(vocab[t] for t in bpe(word))
        return ids

    rows = [json.dumps({"text": s, "ids": encode(s)}, ensure_ascii=False) for s in STRINGS]
    print("[\n" + ",\n".join(rows) + "\n]")


if __name__ == "__main__":
    main(sys.argv[1])
