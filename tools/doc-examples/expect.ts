/** `expect:` annotations: every expected text must appear in the output, in order (each after the last match). */
export function checkExpectations(expects: readonly string[], output: string): string[] {
  let from = 0;
  for (const e of expects) {
    const at = output.indexOf(e, from);
    if (at < 0) {
      const seenEarlier = output.indexOf(e) >= 0;
      return [`expected "${e}" in the output${seenEarlier ? ' (it appears, but before the previous expectation)' : ''}`];
    }
    from = at + e.length;
  }
  return [];
}
