/**
 * A small typed command-line parser shared by the sub-commands: `--name value` and boolean `--flag`, with
 * errors that name the option and show the usage.
 */

export type OptionKind = "string" | "number" | "int" | "boolean";

export interface OptionSpec {
  kind: OptionKind;
  /** Shown in the usage. */
  help: string;
  required?: boolean;
}

export type Parsed<S extends Record<string, OptionSpec>> = {
  [K in keyof S]?: S[K]["kind"] extends "boolean" ? boolean : S[K]["kind"] extends "string" ? string : number;
};

export function usage(command: string, specs: Record<string, OptionSpec>): string {
  const lines = Object.entries(specs).map(([name, s]) => {
    const arg = s.kind === "boolean" ? `--${name}` : `--${name} ${s.kind === "string" ? "VALUE" : "N"}`;
    return `  ${arg.padEnd(26)} ${s.help}${s.required ? " (required)" : ""}`;
  });
  return `usage: deno task ${command} [options]\n${lines.join("\n")}`;
}

/** Parses `args`; returns "help" for --help. Throws a TypeError naming a bad or missing option. */
export function parseArgs<S extends Record<string, OptionSpec>>(
  command: string,
  specs: S,
  args: string[],
): Parsed<S> | "help" {
  const out: Record<string, unknown> = {};
  const help = () => usage(command, specs);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--help" || arg === "-h") return "help";
    if (!arg.startsWith("--")) throw new TypeError(`unexpected argument "${arg}"\n${help()}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const spec = specs[name];
    if (!spec) throw new TypeError(`unknown option --${name}\n${help()}`);
    if (spec.kind === "boolean") {
      out[name] = true;
      continue;
    }
    const raw = inline ?? args[++i];
    if (raw === undefined) throw new TypeError(`--${name} needs a value\n${help()}`);
    if (spec.kind === "string") out[name] = raw;
    else {
      const value = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(value)) {
        throw new TypeError(`--${name} must be a number, got "${raw}"`);
      }
      if (spec.kind === "int" && !Number.isInteger(value)) {
        throw new TypeError(`--${name} must be an integer, got "${raw}"`);
      }
      out[name] = value;
    }
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.required && out[name] === undefined) throw new TypeError(`--${name} is required\n${help()}`);
  }
  return out as Parsed<S>;
}
