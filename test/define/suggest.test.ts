/**
 * "Did you mean" over many names: a `Suggester` answers as `suggest` does, and caps the
 * comparisons it makes in all, so that a flow with a typo in each of 50,000 tasks is not
 * 2.5 billion comparisons; hints list a few names, not all of them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Suggester, listNames, suggest } from '../../src/define/suggest.js';

/** Optimal string alignment distance, the whole table: what the early exits must agree with. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The rule of `suggest`, written out. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = distance(name, c);
    if (dist <= limit && dist < Math.max(name.length, c.length) && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

describe('Suggester', () => {
  it('answers as suggest does, ties included, and both as the rule says', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', '_'), maxLength: 9 });
    fc.assert(
      fc.property(fc.array(word, { maxLength: 12 }), fc.array(word, { minLength: 1, maxLength: 8 }), (names, asked) => {
        const suggester = new Suggester(names);
        for (const name of [...asked, ...asked]) {
          expect(suggest(name, names)).toBe(closest(name, names));
          expect(suggester.suggest(name)).toBe(closest(name, names));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('stops suggesting once it has made its comparisons, rather than compare every name with every other', () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `task_${i}`);
    const suggester = new Suggester(ids);
    expect(suggester.suggest('taks_1')).toBe('task_1');
    let answered = 0;
    for (let i = 0; i < 1_000; i++) if (suggester.suggest(`taks_${i}x`) !== undefined) answered++;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(100);
    // An answer given before the cap is kept.
    expect(suggester.suggest('taks_1')).toBe('task_1');
  });
});

describe('listNames', () => {
  it('lists a few names, and counts the rest', () => {
    expect(listNames(['a', 'b'])).toBe('a, b');
    const many = Array.from({ length: 50_000 }, (_, i) => `t${i}`);
    expect(listNames(many)).toBe(`${many.slice(0, 20).join(', ')} and 49980 more`);
  });
});
