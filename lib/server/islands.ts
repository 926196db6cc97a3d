/**
 * Islands: the Preact components under islands/ that the browser hydrates. At server start they are bundled
 * into one browser module with `deno bundle --platform browser`; the bundle is cached under
 * `<lab home>/islands/` by a hash of every local module it includes plus deno.json and deno.lock, so a restart
 * with unchanged sources reuses it and a changed island is rebuilt — no manual build step.
 *
 * An island is `islands/<Name>.tsx` with `export default function <Name>(props)`; props must be JSON.
 * Pages render it with `<Island of={Name} props={...} />` (lib/server/render.tsx).
 */
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PROJECT_ROOT } from "../paths.ts";

export interface IslandBundle {
  /** URL path the layout loads the bundle from; its file name carries the bundle's content hash. */
  url: string;
  /** The bundled JavaScript. */
  code: string;
  /** Island names (file base names) in the bundle. */
  names: string[];
}

export const ISLANDS_DIR: string = path.join(PROJECT_ROOT, "islands");

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Island files: `islands/*.tsx`, excluding `_`-prefixed helpers. */
export async function islandNames(dir: string = ISLANDS_DIR): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".tsx") && !entry.name.startsWith("_")) {
      names.push(entry.name.slice(0, -4));
    }
  }
  return names.sort();
}

/** The browser entry: imports every island and hydrates each `[data-island]` element with its JSON props. */
function entrySource(names: string[], dir: string): string {
  const imports = names.map((name, i) =>
    `import island${i} from ${JSON.stringify(pathToFileURL(path.join(dir, `${name}.tsx`)).href)};`
  );
  const table = names.map((name, i) => `  ${JSON.stringify(name)}: island${i},`);
  return `${imports.join("\n")}
import { h, hydrate } from "preact";
const islands = {
${table.join("\n")}
};
for (const host of document.querySelectorAll("[data-island]")) {
  const name = host.getAttribute("data-island");
  const component = islands[name];
  const propsScript = host.querySelector(":scope > script[type='application/json']");
  const root = host.querySelector(":scope > [data-island-root]");
  if (!component || !propsScript || !root) {
    console.error("island " + name + " cannot be hydrated: no such island or markup");
    continue;
  }
  hydrate(h(component, JSON.parse(propsScript.textContent || "{}")), root);
}
`;
}

async function runDeno(args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: PROJECT_ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(`deno ${args[0]} of the islands failed:\n${decoder.decode(output.stderr)}`);
  }
  return decoder.decode(output.stdout);
}

/**
 * Bundles the islands (or reuses the cached bundle) under `<home>/islands/`. `dir` is the islands folder
 * (tests point it elsewhere).
 */
export async function buildIslands(home: string, dir: string = ISLANDS_DIR): Promise<IslandBundle> {
  const names = await islandNames(dir);
  const cacheDir = path.join(home, "islands");
  await Deno.mkdir(cacheDir, { recursive: true });
  const entryText = entrySource(names, dir);
  const entryPath = path.join(cacheDir, `entry-${(await sha256Hex(entryText)).slice(0, 16)}.ts`);
  await Deno.writeTextFile(entryPath, entryText);
  const config = path.join(PROJECT_ROOT, "deno.json");

  // The cache key covers every local module the bundle would include, so editing a helper an island imports
  // rebuilds it too; npm packages are pinned by deno.json and deno.lock, which are part of the key.
  const info = JSON.parse(await runDeno(["info", "--json", "--config", config, entryPath])) as {
    modules: { specifier: string }[];
  };
  const parts: string[] = [];
  const keyFiles = info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"))
    .map((s) => fileURLToPath(s));
  keyFiles.push(config, path.join(PROJECT_ROOT, "deno.lock"));
  for (const file of keyFiles.sort()) {
    let content: Uint8Array;
    try {
      content = await Deno.readFile(file);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    parts.push(`${file}\0${await sha256Hex(content)}`);
  }
  const inputKey = (await sha256Hex(`${Deno.version.deno}\n${parts.join("\n")}`)).slice(0, 16);
  const cached = path.join(cacheDir, `bundle-${inputKey}.js`);
  let code: string;
  try {
    code = await Deno.readTextFile(cached);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    const temporary = `${cached}.${crypto.randomUUID()}.tmp`;
    await runDeno([
      "bundle",
      "--platform",
      "browser",
      "--config",
      config,
      "--minify",
      "--quiet",
      "-o",
      temporary,
      entryPath,
    ]);
    // Renamed into place so a concurrent start never reads a half-written bundle.
    await Deno.rename(temporary, cached);
    code = await Deno.readTextFile(cached);
  }
  const contentHash = (await sha256Hex(code)).slice(0, 16);
  return { url: `/islands/islands.${contentHash}.js`, code, names };
}
