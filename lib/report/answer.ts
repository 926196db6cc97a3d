/**
 * An answer as reports and pages show it: an empty or blank one is named, so that a model that said nothing (a
 * tiny random model often repeats a newline, which evaluation trims away) does not read as a missing cell. No
 * imports: the browser's islands use it too.
 */
export function shownAnswer(output: string): string {
  return output.trim() === "" ? "(empty answer)" : output;
}
