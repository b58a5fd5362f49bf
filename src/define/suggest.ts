/**
 * "Did you mean" for names users type: params, flags, keys, task ids. One rule everywhere,
 * so that the same typo gets the same suggestion from the CLI, the loader and the runtime.
 */

/**
 * Names longer than this get no suggestion, and are suggested for none: comparing two names
 * costs the product of their lengths, and a typo in a name of a megabyte is no typo.
 */
const MAX_LENGTH = 256;

/**
 * The candidate closest to `name`, or `undefined` when none is close enough. Distance is
 * Levenshtein with adjacent transpositions counted as one edit (`dya` → `day` is one typo);
 * at most `max(2, ⌊len/3⌋)` edits, and never a full rewrite (`x` does not suggest `n`).
 * Ties go to the earlier candidate. Example: `suggest('dya', ['day', 'n'])` → `'day'`.
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length > MAX_LENGTH) return undefined;
  const limit = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (Math.abs(candidate.length - name.length) > limit || candidate.length > MAX_LENGTH) continue;
    const distance = editDistance(name, candidate, Math.min(limit, bestDistance));
    if (distance <= limit && distance < Math.max(name.length, candidate.length) && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Comparisons one `Suggester` makes in all: with it, a flow of 50,000 tasks that misspells
 * a name in each gets suggestions for the first few, not 2.5 billion comparisons.
 */
const SUGGESTER_BUDGET = 500_000;

/**
 * `suggest` over one fixed list of candidates, asked many times (every unknown dependency
 * of a large flow): candidates are grouped by length, so that only those within reach
 * are compared; each name is answered once; and the comparisons made in all are capped,
 * after which it suggests nothing. Answers are those of `suggest`.
 * Example: `new Suggester(['day', 'n']).suggest('dya')` → `'day'`.
 */
export class Suggester {
  /** Candidates by length, each with its place in the list (ties go to the earlier). */
  private readonly byLength = new Map<number, { name: string; at: number }[]>();
  private readonly answers = new Map<string, string | undefined>();
  private budget = SUGGESTER_BUDGET;

  constructor(candidates: Iterable<string>) {
    let at = 0;
    for (const name of candidates) {
      if (name.length > MAX_LENGTH) {
        at++;
        continue;
      }
      let group = this.byLength.get(name.length);
      if (!group) this.byLength.set(name.length, (group = []));
      group.push({ name, at: at++ });
    }
  }

  suggest(name: string): string | undefined {
    if (name.length > MAX_LENGTH) return undefined;
    if (this.answers.has(name)) return this.answers.get(name);
    const limit = Math.max(2, Math.floor(name.length / 3));
    let best: { name: string; at: number } | undefined;
    let bestDistance = Infinity;
    for (let length = Math.max(0, name.length - limit); length <= name.length + limit; length++) {
      for (const candidate of this.byLength.get(length) ?? []) {
        if (this.budget <= 0) return undefined;
        this.budget--;
        const distance = editDistance(name, candidate.name, Math.min(limit, bestDistance));
        if (distance > limit || distance >= Math.max(name.length, candidate.name.length)) continue;
        if (distance < bestDistance || (distance === bestDistance && best !== undefined && candidate.at < best.at)) {
          best = candidate;
          bestDistance = distance;
        }
      }
    }
    this.answers.set(name, best?.name);
    return best?.name;
  }
}

/** Names listed in a hint at most; a flow of 50,000 tasks gets the first ones and a count. */
const LISTED_NAMES = 20;

/** `a, b, c` for a few names; for many, the first ones and how many more. */
export function listNames(names: readonly string[], max = LISTED_NAMES): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/**
 * Optimal string alignment distance, three rolling rows (the transposition looks two back).
 * Past `max` it stops early and returns a number over `max`: a row whose least entry is
 * over `max` cannot lead to a smaller distance, as entries never decrease along a path.
 */
function editDistance(a: string, b: string, max = Infinity): number {
  let twoBack = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  let previousLeast = 0;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let least = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(previous, j) + 1, at(current, j - 1) + 1, at(previous, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, at(twoBack, j - 2) + 1);
      }
      current[j] = value;
      if (value < least) least = value;
    }
    // A transposition may still look back over one row, so stop only when two rows are past `max`.
    if (least > max && previousLeast > max) return max + 1;
    previousLeast = least;
    [twoBack, previous, current] = [previous, current, twoBack];
  }
  return at(previous, b.length);
}

function at(row: readonly number[], index: number): number {
  return row[index] as number;
}
