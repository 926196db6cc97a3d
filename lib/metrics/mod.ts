/**
 * Text metrics: BLEU exactly as sacreBLEU 2.x, METEOR exactly as nltk 3.8/3.9 (WordNet 3.1), and the
 * Russian-aware `meteor_ru`.
 */
export {
  bleuFromStatistics,
  type BleuOptions,
  type BleuScore,
  bleuSignature,
  type BleuSmoothMethod,
  bleuStatistics,
  bleuTokens,
  computeBleu,
  corpusBleu,
  SACREBLEU_VERSION,
  sentenceBleu,
} from "./bleu.ts";
export { tokenize13a } from "./tokenizer_13a.ts";
export {
  type CorpusMeteor,
  corpusMeteor,
  corpusMeteorRu,
  type MeteorOptions,
  type MeteorParams,
  meteorRuScore,
  meteorScore,
} from "./meteor.ts";
export { type MeteorTokenization, tokenizeWords } from "./word_tokenize.ts";
export { porterStem } from "./porter.ts";
export { defaultWordNetDir, sharedWordNet, WordNet, type WordNetPos } from "./wordnet.ts";
