/** Debian's chromium for playwright-core: where it is, and how the lab's browser tests launch it. */
import { type Browser, chromium } from "playwright-core";

/** CHROMIUM_PATH, /usr/bin/chromium or /usr/bin/chromium-browser; null when none is installed. */
export function chromiumPath(): string | null {
  for (const candidate of [Deno.env.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (!candidate) continue;
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // Not installed there; try the next place.
    }
  }
  return null;
}

/** Headless, no sandbox, no GPU, no background traffic (as the issue asks). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}
