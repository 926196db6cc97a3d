#!/usr/bin/env python3
"""sacreBLEU goldens for lib/metrics/bleu.ts and lib/metrics/tokenizer_13a.ts.

Usage: python3 tests/goldens/metrics_goldens.py OUT_DIR
Writes OUT_DIR/sacrebleu.json; the lead commits it as tests/fixtures/metrics/sacrebleu.json.

Everything is computed by the installed sacrebleu (2.x): corpus BLEU (13a, exp smoothing, no effective
order), sentence_bleu (exp smoothing, effective order), the 13a tokenisation of every string, a corpus with
two references per sentence, and the error raised for an empty reference. A section that raises is recorded
as {"error": ...} instead of aborting the whole file, so one surprise does not hide the other goldens.
"""
import json
import os
import sys

import sacrebleu
from sacrebleu.metrics import BLEU

# (hypothesis, reference) pairs: Russian and English; punctuation, numbers, hyphens, quotes, HTML entities,
# an empty hypothesis, an exact match, no overlap, very short sentences.
PAIRS = [
    ("Штирлиц закрыл дверь, и свет погас.", "Штирлиц открыл дверь. Свет погас."),
    ("It was a cold bright day in April and clocks struck thirteen.",
     "It was a bright cold day in April, and the clocks were striking thirteen."),
    ("the fast brown foxes jumped over a lazy dog", "the quick brown fox jumps over the lazy dog"),
    ("Это точное совпадение, без единой ошибки!", "Это точное совпадение, без единой ошибки!"),
    ("", "Пустая гипотеза получает ноль."),
    ("совсем другие слова здесь", "nothing in common at all"),
    ("Да.", "Да."),
    ("Нет", "Да"),
    ("ok", "ok ok"),
    ("Цена выросла на 3,5% до 1,000.50 руб. за 2-3 дня.", "Цена выросла на 3,5 % до 1,000.50 рублей за 2 - 3 дня."),
    ("&quot;Привет&quot;, &amp; пока &lt;b&gt;жирный&lt;/b&gt;", "\"Привет\", & пока <b>жирный</b>"),
    ("«Ёлки-палки», — сказал он… и ушёл.", "«Ёлки-палки», — сказал он... и ушёл."),
    ("Mr. O'Neil's e-mail: john.doe@example.com (see p. 12-14).",
     "Mr. O'Neil's email is john.doe@example.com, see pages 12-14."),
    ("A cat sat on the mat.", "The cat is sitting on the mat."),
    ("Вовочка, почему ты опоздал? — Так ведь знак: «Школа, тише ход»!",
     "Вовочка, почему опоздал? — Знак же висит: «Школа — тише ход!»"),
    ("He said &quot;yes&quot; &amp;&amp; left", "He said \"yes\" && left"),
    ("Tabs\tand  double  spaces\u00a0and nbsp", "Tabs and double spaces and nbsp"),
    ("line-\nbreak <skipped> here", "linebreak here"),
    ("3.14 - это число пи, а 2.71 - e", "3.14 — это число пи, а 2.71 — это e"),
    ("Hello, world!", "Hello world"),
    ("ПРОПИСНЫЕ буквы", "прописные буквы"),
    ("1-2-3, 4.5.6 и 7,8,9", "1-2-3, 4.5.6 и 7,8,9."),
    ("a b c d e f g h", "a b c d e f g h i j k l"),
    ("x", "y"),
]

# Strings whose 13a tokenisation alone is compared (beside every hypothesis and reference above).
EXTRA_TOKENIZE = [
    "",
    "   ",
    "&amp;quot; &amp;lt; &#39; &apos; &nbsp;",
    "$100,000.00 or 50% off; 3:45pm [note] {braces} |pipe| ~tilde^ `tick` _under_",
    "1990s-era U.S.A. - the end.",
    "word-\nword",
    "trailing dash -\n",
    "unicode\u2009thin\u3000ideographic\u2028line\u0085next\u001fus\ufeffbom",
    "emoji 😀. done, 9.",
    "ending with period.",
    ".leading period and ,comma",
    "a.b,c",
    "9.a a.9 9,9 a,a -9 9- a-a",
]

MULTI_REF_HYPS = [
    "Штирлиц закрыл дверь, и свет погас.",
    "the fast brown foxes jumped over a lazy dog",
    "ok",
    "Да.",
]
MULTI_REF_STREAMS = [
    ["Штирлиц открыл дверь. Свет погас.", "the quick brown fox jumps over the lazy dog", "ok ok", "Да."],
    ["Штирлиц закрыл дверь и погас свет.", "a fast brown fox jumped over the lazy dog", "ok ok ok ok", "Нет."],
]


def score_dict(score, signature=None):
    out = {
        "score": score.score,
        "counts": list(score.counts),
        "totals": list(score.totals),
        "precisions": list(score.precisions),
        "bp": score.bp,
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
    }
    if signature is not None:
        out["signature"] = signature
    return out


def guarded(compute):
    try:
        return compute()
    except Exception as err:  # recorded, so the TS side can check that it raises too
        return {"error": f"{type(err).__name__}: {err}"}


def corpus_section():
    bleu = BLEU()
    score = bleu.corpus_score([h for h, _ in PAIRS], [[r for _, r in PAIRS]])
    return score_dict(score, str(bleu.get_signature()))


def multi_ref_section():
    bleu = BLEU()
    score = bleu.corpus_score(MULTI_REF_HYPS, MULTI_REF_STREAMS)
    return score_dict(score, str(bleu.get_signature()))


def lowercase_section():
    bleu = BLEU(lowercase=True)
    score = bleu.corpus_score([h for h, _ in PAIRS], [[r for _, r in PAIRS]])
    return score_dict(score, str(bleu.get_signature()))


def sentence_section():
    rows = []
    for hyp, ref in PAIRS:
        score = sacrebleu.sentence_bleu(hyp, [ref])
        rows.append({"hyp": hyp, "refs": [ref], **score_dict(score)})
    for index, hyp in enumerate(MULTI_REF_HYPS):
        refs = [stream[index] for stream in MULTI_REF_STREAMS]
        score = sacrebleu.sentence_bleu(hyp, refs)
        rows.append({"hyp": hyp, "refs": refs, **score_dict(score)})
    return rows


def sentence_signature():
    bleu = BLEU(effective_order=True)
    bleu.sentence_score(PAIRS[0][0], [PAIRS[0][1]])
    return str(bleu.get_signature())


def tokenize_section():
    tokenizer = BLEU(tokenize="13a").tokenizer
    texts = []
    for hyp, ref in PAIRS:
        texts.extend([hyp, ref])
    texts.extend(EXTRA_TOKENIZE)
    seen = set()
    rows = []
    for text in texts:
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "tokenized": tokenizer(text)})
    return rows


def main():
    if len(sys.argv) != 2:
        print("usage: metrics_goldens.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    result = {
        "sacrebleu_version": sacrebleu.__version__,
        "python": sys.version.split()[0],
        "corpus": guarded(corpus_section),
        "corpus_multi_ref": guarded(multi_ref_section),
        "corpus_lowercase": guarded(lowercase_section),
        "sentence_signature": guarded(sentence_signature),
        "sentence": guarded(sentence_section),
        "empty_reference": guarded(lambda: score_dict(BLEU().corpus_score(["some words"], [[""]]))),
        "tokenize_13a": guarded(tokenize_section),
    }
    path = os.path.join(out_dir, "sacrebleu.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    corpus = result["corpus"]
    print(f"sacrebleu {result['sacrebleu_version']}: wrote {path} ({os.path.getsize(path)} bytes)")
    if "error" in corpus:
        print(f"corpus BLEU failed: {corpus['error']}")
    else:
        print(f"corpus BLEU {corpus['score']:.4f} | {corpus['signature']}")
    sentences = result["sentence"]
    count = "error" if isinstance(sentences, dict) else len(sentences)
    print(f"sentence_bleu rows: {count}; tokenisations: {len(result['tokenize_13a'])}")
    print(f"empty reference: {result['empty_reference']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
