/** The shapes a dataset takes on its way from a file to training and evaluation. */

/** One replica of a seed dialog (`parsed` item of igorktech/anekdots_dialogs). */
export interface Replica {
  speakerName: string;
  phrase: string;
}

/** A schema-valid row of the seed's dataset: `original`, `parsed`, `total_mark`. */
export interface SeedRow {
  kind: "seed";
  /** 1-based line (JSONL, CSV) or row (parquet, JSON array) number in the source file. */
  line: number;
  original: string;
  replicas: Replica[];
  totalMark: number;
}

export type ChatRole = "system" | "user" | "assistant";

/** A type alias (not an interface) so it is assignable to the tokenizer's open-ended message type. */
export type ChatMessage = {
  role: ChatRole;
  content: string;
};

/** A schema-valid row of the generic chat format `{"messages": [{"role", "content"}]}`. */
export interface ChatRow {
  kind: "chat";
  line: number;
  messages: ChatMessage[];
}

export type DatasetRow = SeedRow | ChatRow;

export type DatasetFormat = "parquet" | "jsonl" | "json" | "csv";
export type DatasetSchema = "seed" | "chat";

/** A rejected row: where it was, why (a stable reason code), and a short human-readable detail. */
export interface BadRow {
  line: number;
  reason: string;
  detail: string;
}

/** Rejected rows counted by reason, with the first few kept to show. */
export interface BadRowReport {
  counts: Record<string, number>;
  examples: BadRow[];
}

/** What a loader returns: the valid rows and an account of the rest. */
export interface LoadedDataset {
  path: string;
  format: DatasetFormat;
  schema: DatasetSchema;
  /** Records seen in the file (lines for JSONL, records for CSV, rows for parquet / JSON arrays). */
  rowsRead: number;
  rows: DatasetRow[];
  bad: BadRowReport;
}

/** One training or evaluation example in the chat format every trainer and evaluator takes. */
export interface ChatExample {
  messages: ChatMessage[];
  /** The seed's rating, or null for chat-format sources. */
  totalMark: number | null;
  /** Where the example came from in the source file (1-based). */
  line: number;
}
