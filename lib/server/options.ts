/** The server's address, port, token and data folder, from flags and the environment. */
import { labHome } from "../paths.ts";

export interface ServeOptions {
  host: string;
  port: number;
  /** Bearer token every request must carry; required when `host` is not a loopback address. */
  token: string | null;
  /** The lab's data folder (run store, island bundles, run outputs). */
  home: string;
}

export const SERVE_USAGE = `usage: deno task start [--host H] [--port P]
  --host H   address to bind (default 127.0.0.1, env OSTROTA_HOST); any non-loopback address needs
             OSTROTA_TOKEN set: every request must then carry it (Authorization: Bearer, or ?token= once in
             the browser)
  --port P   port (default 8000, env OSTROTA_PORT; 0 picks a free one)
env: OSTROTA_HOME (data folder, default .ostrota/), OSTROTA_TOKEN, OSTROTA_MODEL_ROOTS, OSTROTA_DATA_ROOTS,
     OSTROTA_OUTPUT_ROOTS (folders the lab may read models/datasets from and write outputs to, ':'-separated)`;

/** True for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

function parsePort(value: string, source: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new RangeError(`${source} must be a port number 0-65535, got "${value}"`);
  }
  return port;
}

/** Parses `serve` flags over env defaults; "help" for --help. Throws TypeError/RangeError naming the flag. */
export function parseServeOptions(
  args: string[],
  env: { get(name: string): string | undefined } = Deno.env,
): ServeOptions | "help" {
  let host = env.get("OSTROTA_HOST") || "127.0.0.1";
  const envPort = env.get("OSTROTA_PORT");
  let port = envPort ? parsePort(envPort, "OSTROTA_PORT") : 8000;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const next = args[++i];
      if (next === undefined) throw new TypeError(`${arg} needs a value\n${SERVE_USAGE}`);
      return next;
    };
    if (arg === "--help" || arg === "-h") return "help";
    else if (arg === "--host") host = value();
    else if (arg === "--port") port = parsePort(value(), "--port");
    else if (arg.startsWith("--host=")) host = arg.slice("--host=".length);
    else if (arg.startsWith("--port=")) port = parsePort(arg.slice("--port=".length), "--port");
    else throw new TypeError(`unknown option "${arg}"\n${SERVE_USAGE}`);
  }
  const token = env.get("OSTROTA_TOKEN") || null;
  if (!isLoopback(host) && !token) {
    throw new TypeError(
      `--host ${host} is reachable from other machines, so the lab needs a token: set OSTROTA_TOKEN ` +
        `(e.g. OSTROTA_TOKEN=$(openssl rand -hex 16)) or bind to 127.0.0.1`,
    );
  }
  if (token !== null && token.length < 16) {
    throw new RangeError(`OSTROTA_TOKEN must be at least 16 characters, got ${token.length}`);
  }
  return { host, port, token, home: labHome(env) };
}
