"""Writes tests/nn/golden/gpt2_style_bpe.json and gpt2_style_bpe_ids.json: a GPT-2-layout byte-level
BPE tokenizer trained by Hugging Face `tokenizers` (ByteLevelBPETokenizer, 600 tokens, on the first
400,000 bytes of the KJV text that Debian's bible-kjv prints), converted by tools/gpt2_tokenizer.py,
and the ids Hugging Face's tokenizer gives for a test text. tests/nn/test_gpt_model.cpp checks that
Ember's BPETokenizer, loaded from the converted file, gives the same tokens (byte ids through
gpt2_byte_token_ids).

Run once with tokenizers installed (pip install tokenizers): python3 tests/nn/make_gpt2_tokenizer_golden.py
"""
import json
import os
import subprocess
import sys
import tempfile

from tokenizers import ByteLevelBPETokenizer

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tools"))
import gpt2_tokenizer  # noqa: E402

TEXT = ("Ge1:1 In the beginning God created the heaven and the earth.\n"
        "And God said, Let there be light: and there was light.  It's 1611; don't they'll "
        "we've I'm he'd?!\n\tTabs,   spaces\n\nand \u00e9t\u00e9 \u2014 na\u00efve \U0001F600 end")

text = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], check=True,
                      capture_output=True).stdout.decode()[:400000]
with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(text)
    tok = ByteLevelBPETokenizer()
    tok.train([corpus], vocab_size=600, min_frequency=2, special_tokens=[], show_progress=False)
    tok.save_model(d)
    with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(l.rstrip("\n").split(" ")) for l in f
                  if l.strip() and not l.startswith("#version")]

golden = os.path.join(here, "golden")
with open(os.path.join(golden, "gpt2_style_bpe.json"), "w", encoding="utf-8") as f:
    json.dump(gpt2_tokenizer.convert(vocab, merges), f)
with open(os.path.join(golden, "gpt2_style_bpe_ids.json"), "w", encoding="utf-8") as f:
    json.dump({"text": TEXT, "ids": tok.encode(TEXT).ids}, f)
print(len(merges), "merges;", len(tok.encode(TEXT).ids), "ids for the test text")
