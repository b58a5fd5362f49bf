/** Helpers for tests of flow files: text as written, and problems as compared. */
import { expect } from 'vitest';
import type { Problem } from '../../src/core/errors.js';
import type { FlowSpec } from '../../src/core/model.js';
import { assertLoaded, parseFlowText } from '../../src/define/load-yaml.js';

/** Strips the common indentation so that line numbers in a test read as written. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings
    .reduce((out, s, i) => out + s + (i < values.length ? String(values[i]) : ''), '')
    .replace(/^\n/, '');
  const indent = Math.min(
    ...text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.length - l.trimStart().length),
  );
  return text
    .split('\n')
    .map((l) => l.slice(indent))
    .join('\n');
}

/** The spec of a file that must load. */
export function specOf(text: string, file = 'flow.yaml'): FlowSpec {
  return assertLoaded(parseFlowText(text, { file }), file);
}

/** A problem as the tests compare it: where, what, and what to do. */
export interface Brief {
  readonly code: string;
  readonly at: string;
  readonly message: string;
  readonly hint: string | undefined;
}

export function brief(p: Problem): Brief {
  return {
    code: p.code,
    at: `${p.location?.line ?? '?'}:${p.location?.column ?? '?'}`,
    message: p.message,
    hint: p.hint,
  };
}

/** The problems of a file that must not load. */
export function problemsOf(text: string, file = 'flow.yaml'): Brief[] {
  const result = parseFlowText(text, { file });
  expect(result.spec).toBeUndefined();
  return result.problems.map(brief);
}

/** The one problem of a file. */
export function onlyProblem(text: string, file = 'flow.yaml'): Brief {
  const problems = problemsOf(text, file);
  expect(problems.map((p) => `${p.at} ${p.message}`)).toHaveLength(1);
  return problems[0] as Brief;
}
