/** Shared by the lab's API routes: library validation errors become 400s that keep their message. */
import { BadRequestError } from "../../lib/server/http.ts";

/**
 * Runs `work`; a TypeError or RangeError it throws (the library's "bad input, here is the fix") is rethrown
 * as BadRequestError so the app answers 400 with the same message. Other errors stay 500s.
 */
export async function asBadRequest<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if ((err instanceof TypeError || err instanceof RangeError) && !(err instanceof BadRequestError)) {
      const status = (err as { name: string }).name;
      // Errors the app already maps to their own status (404, 409, 413, path confinement) pass through.
      if (
        ["RunNotFoundError", "RunStateError", "BodyTooLargeError", "PathOutsideRootsError"].includes(status)
      ) {
        throw err;
      }
      throw new BadRequestError(err.message);
    }
    throw err;
  }
}
