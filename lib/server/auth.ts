/**
 * The bearer-token gate. With a token configured (required off loopback), every page and API call must carry
 * it: `Authorization: Bearer <token>` for API clients, or — for a browser — `?token=<token>` once, which sets an
 * HttpOnly cookie and redirects to the same URL without the token (so it does not stay in history or logs).
 */
import type { MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";

export const TOKEN_COOKIE = "ostrota_token";

/** Compares in time independent of where the strings differ. */
function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

export function requireToken(token: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization");
    const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1];
    if (bearer !== undefined && sameSecret(bearer, token)) return await next();
    const cookie = getCookie(c, TOKEN_COOKIE);
    if (cookie !== undefined && sameSecret(cookie, token)) return await next();
    const url = new URL(c.req.url);
    const query = url.searchParams.get("token");
    if (query !== null && sameSecret(query, token)) {
      setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/" });
      if (c.req.method === "GET" && !c.req.path.startsWith("/api/")) {
        url.searchParams.delete("token");
        return c.redirect(url.pathname + url.search, 303);
      }
      return await next();
    }
    c.header("WWW-Authenticate", 'Bearer realm="ostrota"');
    return c.json({
      error: "this lab needs its token: send Authorization: Bearer <OSTROTA_TOKEN>, or open the page once " +
        "with ?token=<OSTROTA_TOKEN>",
    }, 401);
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Guards a lab that relies on loopback instead of a token against other web pages the user has open:
 * - a request whose Host is not a loopback name is refused (DNS rebinding: evil.example resolving to
 *   127.0.0.1 would otherwise be same-origin with the lab) — only when `loopbackOnly`;
 * - a state-changing request from a browser must come from the lab's own origin (a page elsewhere may POST a
 *   form or a text/plain fetch to 127.0.0.1 without any preflight).
 */
export function guardOrigin(loopbackOnly: boolean): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header("host") ?? "";
    if (loopbackOnly) {
      const name = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1").toLowerCase();
      if (!(name === "localhost" || name === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name))) {
        return c.json({
          error:
            `Host "${host}" is not a loopback name: open the lab as http://127.0.0.1 or http://localhost`,
        }, 403);
      }
    }
    const origin = c.req.header("origin");
    if (!SAFE_METHODS.has(c.req.method) && origin !== undefined) {
      let originHost: string | null = null;
      try {
        originHost = new URL(origin).host;
      } catch {
        // "null" (sandboxed frames, file: pages) and junk are not the lab's origin.
      }
      if (originHost !== host) {
        return c.json({
          error: `cross-origin ${c.req.method} from ${origin} refused: use the lab's own pages`,
        }, 403);
      }
    }
    return await next();
  };
}
