/**
 * "Did you mean" for names users type: params, flags, keys, task ids. One rule everywhere,
 * so that the same typo gets the same suggestion from the CLI, the loader and the runtime.
 */

/**
 * The candidate closest to `name`, or `undefined` when none is close enough. Distance is
 * Levenshtein with adjacent transpositions counted as one edit (`dya` → `day` is one typo);
 * at most `max(2, ⌊len/3⌋)` edits, and never a full rewrite (`x` does not suggest `n`).
 * Ties go to the earlier candidate. Example: `suggest('dya', ['day', 'n'])` → `'day'`.
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (Math.abs(candidate.length - name.length) > limit) continue;
    const distance = editDistance(name, candidate);
    if (distance <= limit && distance < Math.max(name.length, candidate.length) && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance, three rolling rows (the transposition looks two back). */
function editDistance(a: string, b: string): number {
  let twoBack = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(previous, j) + 1, at(current, j - 1) + 1, at(previous, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, at(twoBack, j - 2) + 1);
      }
      current[j] = value;
    }
    [twoBack, previous, current] = [previous, current, twoBack];
  }
  return at(previous, b.length);
}

function at(row: readonly number[], index: number): number {
  return row[index] as number;
}
