import assert from "node:assert/strict";
import { parquetWriteBuffer } from "hyparquet-writer";
import { DatasetError, detectFormat, loadDataset, parseDataset } from "../../../lib/data/load.ts";
import { seedRowsToParquet } from "../../../lib/data/parquet_write.ts";
import type { SeedRow } from "../../../lib/data/types.ts";
import { bytesOf, concatBytes, seedLine } from "./helpers.ts";

Deno.test("JSONL seed rows: valid rows kept, every bad row counted by reason", async () => {
  const lines = [
    seedLine("Вопрос?", "Ответ.", 5),
    seedLine("Второй?", "Да.", null),
    '{"original": "x", "parsed": [], "total_mark": 1,}',
    seedLine("Третий?", "Нет.", "42"),
    JSON.stringify({ original: "x", parsed: "not a list", total_mark: 1 }),
    JSON.stringify({ original: "x", parsed: ["a", "b"], total_mark: 1 }),
    JSON.stringify({ parsed: [{ speaker_name: "", phrase: "a" }], total_mark: 1 }),
    JSON.stringify({ original: "x", parsed: [{ speaker_name: "", phrase: "  " }], total_mark: 1 }),
    "",
    "null",
    seedLine("Четвёртый?", "Ага.", 7, { id: 9 }),
  ];
  const dataset = await parseDataset(bytesOf(lines.join("\n") + "\n"), "inline.jsonl");
  assert.equal(dataset.format, "jsonl");
  assert.equal(dataset.schema, "seed");
  assert.equal(dataset.rowsRead, 11);
  assert.deepEqual(dataset.rows.map((row) => row.line), [1, 11]);
  assert.deepEqual(dataset.bad.counts, {
    total_mark_not_number: 2,
    invalid_json: 1,
    parsed_not_list: 1,
    replica_not_object: 1,
    missing_original: 1,
    empty_phrase: 1,
    blank_line: 1,
    not_an_object: 1,
  });
  assert.equal(dataset.bad.examples.length, 5);
  assert.deepEqual(dataset.bad.examples[0], {
    line: 2,
    reason: "total_mark_not_number",
    detail: "`total_mark` is null, not a number",
  });
});

Deno.test("JSONL: invalid UTF-8, CRLF line ends and a BOM", async () => {
  const bytes = concatBytes(
    new Uint8Array([0xef, 0xbb, 0xbf]),
    bytesOf(seedLine("А?", "Б.", 1) + "\r\n"),
    bytesOf('{"original": "'),
    new Uint8Array([0xff, 0xfe]),
    bytesOf('", "parsed": [], "total_mark": 1}\r\n'),
    bytesOf(seedLine("В?", "Г.", 2) + "\r\n"),
  );
  const dataset = await parseDataset(bytes, "mixed.jsonl");
  assert.equal(dataset.rows.length, 2);
  assert.deepEqual(dataset.bad.counts, { invalid_utf8: 1 });
  assert.equal(dataset.bad.examples[0].line, 2);
});

Deno.test("CSV: parsed as a JSON string, numeric-string marks, wrong field counts, bad UTF-8", async () => {
  const parsed = JSON.stringify([{ speaker_name: "", phrase: "Кто там?" }, {
    speaker_name: "",
    phrase: "Я.",
  }]);
  const quoted = `"${parsed.replaceAll('"', '""')}"`;
  const csv = concatBytes(
    bytesOf(`original,parsed,total_mark\n`),
    bytesOf(`"- Кто там?\n- Я.",${quoted},42\n`),
    bytesOf(`x,${quoted},n/a\n`),
    bytesOf(`x,${quoted}\n`),
    bytesOf(`x,"not json",3\n`),
    bytesOf(`"bad `),
    new Uint8Array([0xc3, 0x28]),
    bytesOf(`",${quoted},3\n`),
  );
  const dataset = await parseDataset(csv, "inline.csv");
  assert.equal(dataset.format, "csv");
  assert.equal(dataset.rowsRead, 5);
  assert.equal(dataset.rows.length, 1);
  const row = dataset.rows[0] as SeedRow;
  assert.equal(row.totalMark, 42);
  assert.equal(row.original, "- Кто там?\n- Я.");
  assert.deepEqual(row.replicas.map((r) => r.phrase), ["Кто там?", "Я."]);
  assert.deepEqual(dataset.bad.counts, {
    total_mark_not_number: 1,
    wrong_column_count: 1,
    parsed_not_list: 1,
    invalid_utf8: 1,
  });
});

Deno.test("JSON strings are not numbers outside CSV: a typed format with a string mark is rejected", async () => {
  const dataset = await parseDataset(
    bytesOf(seedLine("а?", "б.", "42") + "\n" + seedLine("в?", "г.", 12.5)),
    "x.jsonl",
  );
  assert.deepEqual(dataset.bad.counts, { total_mark_not_number: 1 });
  assert.equal((dataset.rows[0] as SeedRow).totalMark, 12.5);
});

Deno.test("chat format: detected from `messages`, roles and contents checked", async () => {
  const lines = [
    JSON.stringify({
      messages: [{ role: "user", content: "Привет" }, { role: "assistant", content: "Пока" }],
    }),
    JSON.stringify({ messages: [{ role: "bot", content: "?" }] }),
    JSON.stringify({ messages: [{ role: "user", content: 5 }] }),
    JSON.stringify({ messages: "nope" }),
  ];
  const dataset = await parseDataset(bytesOf(lines.join("\n")), "chat.jsonl");
  assert.equal(dataset.schema, "chat");
  assert.equal(dataset.rows.length, 1);
  assert.deepEqual(dataset.bad.counts, { bad_role: 1, content_not_string: 1, messages_not_list: 1 });
});

Deno.test("JSON array files are read as one row per element", async () => {
  const text = `[${seedLine("а?", "б.", 1)}, 7, ${seedLine("в?", "г.", 2)}]`;
  const dataset = await parseDataset(bytesOf(text), "rows.json");
  assert.equal(dataset.format, "json");
  assert.equal(dataset.rows.length, 2);
  assert.deepEqual(dataset.bad.counts, { not_an_object: 1 });
});

Deno.test("parquet: list-of-struct `parsed` round-trips; format detected from magic bytes", async () => {
  const rows: SeedRow[] = [
    {
      kind: "seed",
      line: 1,
      original: "- а\n- б",
      replicas: [{ speakerName: "", phrase: "а" }, { speakerName: "Х", phrase: "б" }],
      totalMark: 3,
    },
    { kind: "seed", line: 2, original: "- в", replicas: [{ speakerName: "", phrase: "в" }], totalMark: -1 },
  ];
  const bytes = seedRowsToParquet(rows);
  assert.equal(detectFormat(bytes, "no-extension"), "parquet");
  const dataset = await parseDataset(bytes, "no-extension");
  assert.equal(dataset.format, "parquet");
  assert.deepEqual(dataset.rows, rows);
});

Deno.test("parquet: `parsed` stored as a JSON string column is accepted too", async () => {
  const parsed = JSON.stringify([{ speaker_name: "", phrase: "а?" }, { speaker_name: "", phrase: "б." }]);
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "original", data: ["- а?\n- б."], type: "STRING" },
      { name: "parsed", data: [parsed], type: "STRING" },
      { name: "total_mark", data: [4], type: "INT32" },
    ],
  });
  const dataset = await parseDataset(new Uint8Array(buffer), "strings.parquet");
  assert.equal(dataset.rows.length, 1);
  assert.equal((dataset.rows[0] as SeedRow).replicas[1].phrase, "б.");
});

Deno.test("whole-file problems are clear errors naming the file", async () => {
  await assert.rejects(() => parseDataset(new Uint8Array(), "empty.jsonl"), DatasetError);
  await assert.rejects(() => parseDataset(bytesOf("\n\n"), "blank.csv"), /blank\.csv: the file is empty/);
  await assert.rejects(
    () => parseDataset(bytesOf("a,b\n1,2\n"), "cols.csv"),
    /cols\.csv: unknown columns \[a, b\]/,
  );
  await assert.rejects(
    () => parseDataset(bytesOf('{"text": "hi"}\n'), "x.jsonl"),
    /unknown columns \[text\]/,
  );
  await assert.rejects(() => parseDataset(bytesOf("1\n2\n"), "nums.jsonl"), /no row is a JSON object/);
  const wrongParquet = parquetWriteBuffer({ columnData: [{ name: "text", data: ["a"], type: "STRING" }] });
  await assert.rejects(
    () => parseDataset(new Uint8Array(wrongParquet), "w.parquet"),
    /unknown columns \[text\]/,
  );
  await assert.rejects(
    () => parseDataset(bytesOf("PAR1 broken"), "b.parquet"),
    /not a readable parquet file/,
  );
  await assert.rejects(() => loadDataset("/nonexistent/dir/data.jsonl"), /does not exist/);
  const badArray = concatBytes(bytesOf('[{"original": "'), new Uint8Array([0xff]), bytesOf('"}]'));
  await assert.rejects(() => parseDataset(badArray, "a.json"), /a\.json: not a valid UTF-8 JSON array/);
});
