/**
 * Datasets: loaders for the seed's schema and the chat format (parquet, JSONL/JSON, CSV), the seed's
 * preprocessing with statistics, and a parquet writer.
 */
export * from "./types.ts";
export { BAD_ROW_EXAMPLES } from "./bad_rows.ts";
export { DatasetError, detectFormat, loadDataset, parseDataset } from "./load.ts";
export { type SeedValidationOptions, validateChatRow, type Validated, validateSeedRow } from "./validate.ts";
export {
  type DatasetStats,
  formatDatasetStats,
  prepareDataset,
  type PreparedDataset,
  type PrepareOptions,
  seededPermutation,
} from "./prepare.ts";
export {
  countCodePoints,
  type CountTokens,
  countWhitespaceWords,
  type HistogramBin,
  type LengthSummary,
  summarizeLengths,
} from "./stats.ts";
export { seedRowsToParquet } from "./parquet_write.ts";
