/**
 * Python's notion of whitespace, so that ports of Python metric code split and strip exactly as
 * `str.split()` / `str.rstrip()` do. JavaScript's `\s` differs: it lacks U+001C..U+001F and U+0085 and
 * includes U+FEFF, and those differences change token counts.
 */

/** The characters CPython's `str.isspace()` accepts (Unicode White_Space + bidi classes B/S/WS). */
const PYTHON_WHITESPACE =
  "\t\n\v\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" +
  "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

const WHITESPACE_SET = new Set(PYTHON_WHITESPACE);

/** Python's `text.split()` with no argument: runs of whitespace separate tokens, no empty tokens. */
export function pythonSplit(text: string): string[] {
  const tokens: string[] = [];
  let current = "";
  for (const char of text) {
    if (WHITESPACE_SET.has(char)) {
      if (current !== "") tokens.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (current !== "") tokens.push(current);
  return tokens;
}

/** Python's `text.rstrip()` with no argument. */
export function pythonRstrip(text: string): string {
  let end = text.length;
  while (end > 0 && WHITESPACE_SET.has(text[end - 1])) end--;
  return text.slice(0, end);
}
