#!/usr/bin/env python3
"""Converts a GPT-2 tokenizer as Hugging Face ships it (vocab.json and merges.txt of `gpt2`) into
Ember's byte-level BPE JSON (data::BPETokenizer::load), for

    ember-train-gpt --config gpt2 --pretrained model.safetensors --sample \\
        --tokenizer-file gpt2.json --prompt "Hello"

GPT-2's token ids are 256 byte tokens in the order of its bytes_to_unicode table, then one token
per merge in merge order (id 256 + r), then <|endoftext|> (50256). Ember's BPETokenizer numbers
the byte tokens by byte value instead; load_gpt2_weights reorders wte's first 256 rows to match,
so the merged tokens keep their ids. This script checks that layout and fails otherwise.

    python3 tools/gpt2_tokenizer.py vocab.json merges.txt gpt2.json

Standard library only.
"""
import json
import sys


def bytes_to_unicode():
    """GPT-2's table: printable bytes map to themselves, the others to chr(256 + n), in order."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


def convert(vocab, merges):
    table = bytes_to_unicode()
    char_to_byte = {c: b for b, c in table.items()}
    order = [b for b in range(256) if chr(b) == table[b]] + \
        [b for b in range(256) if chr(b) != table[b]]
    for gpt2_id, b in enumerate(order):  # the byte tokens come first, in the table's order
        tok = table[b]
        if vocab.get(tok) != gpt2_id:
            raise SystemExit(f"byte token {tok!r} has id {vocab.get(tok)}, expected {gpt2_id}: "
                             "not GPT-2's layout")

    def ember_id(token):
        if len(token) == 1:
            return char_to_byte[token]
        return vocab[token]

    out = []
    for r, (a, b) in enumerate(merges):
        merged = a + b
        if vocab.get(merged) != 256 + r:
            raise SystemExit(f"merge {r} ({a!r} {b!r}) makes id {vocab.get(merged)}, expected "
                             f"{256 + r}: not GPT-2's layout")
        out.append([ember_id(a), ember_id(b)])
    special = {tok: i for tok, i in vocab.items() if i >= 256 + len(merges)}
    for k, (tok, i) in enumerate(sorted(special.items(), key=lambda t: t[1])):
        if i != 256 + len(merges) + k:
            raise SystemExit(f"special token {tok!r} has id {i}, expected {256 + len(merges) + k}")
    return {"type": "bpe", "version": 1, "merges": out, "special_tokens": special}


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        vocab = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#version")]
    merges = [tuple(l.split(" ")) for l in lines]
    result = convert(vocab, merges)
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        json.dump(result, f)
    print(f"{sys.argv[3]}: {256 + len(merges) + len(result['special_tokens'])} tokens "
          f"({len(merges)} merges, special {sorted(result['special_tokens'])})")


if __name__ == "__main__":
    main()
