import assert from "node:assert/strict";
import * as path from "node:path";
import { confinePath, labRoots, PathOutsideRootsError } from "../../lib/paths.ts";

Deno.test("confinePath accepts paths inside a root, existing or not, and returns the real path", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostrota-paths-" }));
  const models = path.join(base, "models");
  await Deno.mkdir(path.join(models, "gpt2"), { recursive: true });
  assert.equal(confinePath([models], path.join(models, "gpt2")), path.join(models, "gpt2"));
  assert.equal(confinePath([models], models), models);
  assert.equal(confinePath([models], path.join(models, "new", "out")), path.join(models, "new", "out"));
  assert.equal(confinePath([base], path.join(models, "gpt2", "..", "x")), path.join(models, "x"));
  // A symlink inside the root to another place inside the root is fine, and resolved.
  await Deno.symlink(path.join(models, "gpt2"), path.join(models, "alias"));
  assert.equal(confinePath([models], path.join(models, "alias")), path.join(models, "gpt2"));
});

Deno.test("confinePath refuses a .. escape and a symlink escape", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ostrota-paths-" }));
  const root = path.join(base, "data");
  const outside = path.join(base, "secret");
  await Deno.mkdir(root);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(path.join(outside, "key.txt"), "x");
  assert.throws(() => confinePath([root], path.join(root, "..", "secret", "key.txt")), PathOutsideRootsError);
  assert.throws(() => confinePath([root], `${root}/../secret`), /is outside the allowed folders/);
  assert.throws(
    () => confinePath([root], `${root}-sibling/file`),
    PathOutsideRootsError,
    "a prefix is not a parent",
  );
  await Deno.symlink(outside, path.join(root, "link"));
  assert.throws(() => confinePath([root], path.join(root, "link", "key.txt")), PathOutsideRootsError);
  assert.throws(() => confinePath([root], path.join(root, "link", "not-yet", "file")), PathOutsideRootsError);
  assert.throws(() => confinePath([root], "/etc/passwd"), PathOutsideRootsError);
  assert.throws(() => confinePath([root], ""), TypeError);
  assert.throws(() => confinePath([], root), /no allowed folders/);
});

Deno.test("labRoots defaults under the lab home and takes env lists", () => {
  const defaults = labRoots("/lab", new Map());
  assert.deepEqual(defaults.models, ["/lab/models"]);
  assert.deepEqual(defaults.outputs, ["/lab/runs"]);
  assert.ok(defaults.datasets.includes("/lab/datasets"));
  const custom = labRoots("/lab", new Map([["OSTROTA_MODEL_ROOTS", "/m1:/m2"]]));
  assert.deepEqual(custom.models, ["/m1", "/m2"]);
});
