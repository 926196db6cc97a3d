import assert from "node:assert/strict";
import * as path from "node:path";
import { buildIslands, islandNames } from "../../../lib/server/islands.ts";

Deno.test("islands are bundled once per content and rebuilt when one changes", async () => {
  const home = await Deno.makeTempDir({ prefix: "ostrota-islands-" });
  const dir = await Deno.makeTempDir({ prefix: "ostrota-island-src-" });
  const source = (text: string) =>
    `import { useState } from "preact/hooks";\n` +
    `export default function Counter() { const [n, setN] = useState(0); ` +
    `return <button type="button" onClick={() => setN(n + 1)}>${text} {n}</button>; }\n`;
  await Deno.writeTextFile(path.join(dir, "Counter.tsx"), source("clicks"));
  await Deno.writeTextFile(path.join(dir, "_helper.ts"), "export const x = 1;\n");
  assert.deepEqual(await islandNames(dir), ["Counter"]);
  const first = await buildIslands(home, dir);
  assert.deepEqual(first.names, ["Counter"]);
  assert.match(first.url, /^\/islands\/islands\.[0-9a-f]{16}\.js$/);
  assert.ok(first.code.includes("clicks"));
  const bundles = async () =>
    (await Array.fromAsync(Deno.readDir(path.join(home, "islands")))).filter((e) =>
      e.name.startsWith("bundle-")
    );
  assert.equal((await bundles()).length, 1);
  const again = await buildIslands(home, dir);
  assert.equal(again.url, first.url);
  assert.equal((await bundles()).length, 1, "an unchanged source reuses the cached bundle");
  await Deno.writeTextFile(path.join(dir, "Counter.tsx"), source("taps"));
  const changed = await buildIslands(home, dir);
  assert.notEqual(changed.url, first.url);
  assert.ok(changed.code.includes("taps"));
  assert.equal((await bundles()).length, 2);
});

Deno.test("every island in islands/ is a default-exported function named after its file", async () => {
  for (const name of await islandNames()) {
    const module = await import(`../../../islands/${name}.tsx`);
    assert.equal(typeof module.default, "function", name);
    assert.equal(module.default.name, name, `islands/${name}.tsx must export default function ${name}`);
  }
});
