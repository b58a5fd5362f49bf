/**
 * What every fuzz case must end with, and how failures are reported.
 *
 * The contract under test (DESIGN.md, "bad input gets a clear error"): a command ends with
 * exit 0, or with a coded error — `{"error":{"code":…}}` on stderr under
 * BATON_JSON_ERRORS=1 — whose exit code is the one its code documents; never a stack trace,
 * never INTERNAL (a bug in Baton), never a hang, and never an error that echoes a huge
 * input back or lists without end (what a failing case prints stays under
 * OUTPUT_LIMIT_BYTES, one message under MESSAGE_LIMIT_BYTES). In process, a loader returns
 * or throws a BatonError with the same properties.
 *
 * A suite collects every failing case instead of stopping at the first, groups them by
 * symptom, and fails once with the seed that reproduces them all.
 */
import { ERROR_CODES } from '../../src/core/errors.js';
import type { Exec } from './processes.js';

/** The seed of every generator: fixed, so that CI runs the same cases; BATON_FUZZ_SEED picks others. */
export function fuzzSeed(): number {
  const text = process.env.BATON_FUZZ_SEED;
  if (text === undefined || text === '') return 20_241_207;
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) throw new Error(`BATON_FUZZ_SEED must be an integer, got ${JSON.stringify(text)}`);
  return seed;
}

/** Case counts scale with BATON_FUZZ_SCALE (default 1) for a longer run on a developer's machine. */
export function scaled(count: number): number {
  const text = process.env.BATON_FUZZ_SCALE;
  const scale = text === undefined || text === '' ? 1 : Number(text);
  if (!(scale > 0)) throw new Error(`BATON_FUZZ_SCALE must be a positive number, got ${JSON.stringify(text)}`);
  return Math.max(1, Math.round(count * scale));
}

/** Per case. Generous, so that a loaded CI machine does not fail a slow but finite case. */
export const CASE_DEADLINE_MS = 30_000;

/** After this many hangs a suite stops: each costs a deadline, and the report already shows them. */
export const MAX_HANGS = 3;

/** Most a case may print, or an error may weigh as printed. */
export const OUTPUT_LIMIT_BYTES = 1024 * 1024;

/** Most one message may weigh: messages quote values cut short (flow-schema.ts `show`), never whole inputs. */
export const MESSAGE_LIMIT_BYTES = 64 * 1024;

/** A stack frame as Node prints it. */
const STACK_FRAME = /^\s+at \S.*(?:\(|:\d+:\d+)/m;

export interface CliExpectation {
  /** The input is invalid: exit 0 is a failure. */
  readonly refuse?: boolean;
  /** Store errors are a fair answer (the case names an odd database); otherwise they mean the input reached the store unchecked. */
  readonly storeErrors?: boolean;
  /** Text that must never be printed (a password in a URL). */
  readonly secrets?: readonly string[];
  /** A command whose result on stdout is JSON with `ok` and per-file problems (`validate --json`). */
  readonly validateJson?: boolean;
  /** A command that prints its run as JSON and exits 1 when the run failed (`run --json`). */
  readonly runJson?: boolean;
  /** Errors are printed as text (`error: CODE: message`), not as JSON. */
  readonly text?: boolean;
}

function kib(bytes: number): string {
  return `${Math.round(bytes / 1024)} KiB`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The last `{"error":{…}}` line of a stream, if any. */
export function errorLine(text: string): { code?: unknown; message?: unknown; source?: unknown } | undefined {
  const lines = text.split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{"error"')) continue;
    try {
      const parsed = JSON.parse(line) as { error?: { code?: unknown; message?: unknown; source?: unknown } };
      if (parsed.error && typeof parsed.error === 'object') return parsed.error;
    } catch {
      // Not JSON after all: a line of text that happens to start alike.
    }
  }
  return undefined;
}

/** Why a code is not an acceptable answer, or undefined. */
function codeProblem(code: unknown, message: unknown, storeErrors: boolean): string | undefined {
  if (typeof code !== 'string' || !Object.hasOwn(ERROR_CODES, code))
    return `unknown error code ${JSON.stringify(code)}`;
  if (code === 'INTERNAL') return `INTERNAL: ${String(message)}`;
  if (code.startsWith('STORE_') && !storeErrors) return `store error for a bad input: ${code}: ${String(message)}`;
  return undefined;
}

/** The problems of a `validate --json` result, when stdout is one. */
function validateProblems(stdout: string): { ok: boolean; codes: string[] } | undefined {
  try {
    const parsed = JSON.parse(stdout) as { ok?: unknown; files?: { problems?: { code?: unknown }[] }[] };
    if (typeof parsed.ok !== 'boolean' || !Array.isArray(parsed.files)) return undefined;
    return { ok: parsed.ok, codes: parsed.files.flatMap((f) => (f.problems ?? []).map((p) => String(p.code))) };
  } catch {
    return undefined;
  }
}

/** The state and error of a `run --json` result, when stdout is one. */
function runResult(stdout: string): { state: unknown; code?: unknown; message?: unknown } | undefined {
  try {
    const parsed = JSON.parse(stdout) as { state?: unknown; error?: { code?: unknown; message?: unknown } | null };
    if (typeof parsed.state !== 'string') return undefined;
    return { state: parsed.state, ...(parsed.error ? { code: parsed.error.code, message: parsed.error.message } : {}) };
  } catch {
    return undefined;
  }
}

/** The symptom of a CLI result that breaks the contract, or undefined when it keeps it. */
export function judgeCli(exec: Exec, expect: CliExpectation = {}): string | undefined {
  if (exec.killed === 'deadline') {
    return expect.refuse
      ? `a bad value was not refused: still running after ${Math.round(exec.ms / 1000)} s`
      : `hang: no exit within ${Math.round(exec.ms / 1000)} s`;
  }
  if (exec.killed === 'memory')
    return `memory: the resident set passed its cap (peak ${Math.round(exec.peakRssMb)} MiB)`;
  if (exec.signal) return `ended by signal ${exec.signal}`;
  const text = `${exec.stdout}\n${exec.stderr}`;
  const frame = STACK_FRAME.exec(text);
  if (frame) return `stack trace printed: ${firstLine(exec.stderr || exec.stdout)}`;
  // A result may be big (a large graph, a long listing); diagnostics and errors may not.
  const errorBytes = exec.stderrBytes + (exec.code === 0 ? 0 : exec.stdoutBytes);
  if (errorBytes > OUTPUT_LIMIT_BYTES) return `printed ${mib(errorBytes)} of errors (over ${mib(OUTPUT_LIMIT_BYTES)})`;
  for (const secret of expect.secrets ?? []) if (text.includes(secret)) return 'a secret was printed';
  if (exec.code === 0) {
    if (expect.refuse) return 'a bad value was accepted (exit 0)';
    return undefined;
  }
  if (expect.text) return judgeText(exec);
  const error = errorLine(exec.stderr);
  if (expect.runJson && exec.code === 1) {
    const run = runResult(exec.stdout);
    if (run) {
      if (run.state !== 'failed' && run.state !== 'cancelled') return `exit 1 for a run in state ${run.state}`;
      return run.code === undefined ? undefined : codeProblem(run.code, run.message, false);
    }
  }
  if (expect.validateJson && exec.code === 3) {
    const result = validateProblems(exec.stdout);
    if (result && !result.ok) {
      for (const code of result.codes) {
        const problem = codeProblem(code, 'a validation problem', false);
        if (problem) return problem;
      }
      return undefined;
    }
  }
  if (!error) return `exit ${exec.code} without a coded error: ${firstLine(exec.stderr || exec.stdout)}`;
  const problem = codeProblem(error.code, error.message, expect.storeErrors ?? false);
  if (problem) return problem;
  const messageBytes = Buffer.byteLength(String(error.message));
  if (messageBytes > MESSAGE_LIMIT_BYTES) {
    return `an error message echoes a huge input: ${kib(messageBytes)} in one message (over ${kib(MESSAGE_LIMIT_BYTES)})`;
  }
  const expected = ERROR_CODES[error.code as keyof typeof ERROR_CODES].exitCode;
  if (exec.code !== expected) return `exit ${exec.code} with ${String(error.code)}, which documents exit ${expected}`;
  return undefined;
}

/**
 * A failing command's text error: `error: CODE: message`, or `error: N problems in <file>`
 * followed by coded problems, or a usage error from the option parser (exit 2).
 */
function judgeText(exec: Exec): string | undefined {
  const line = exec.stderr.split('\n').find((l) => l.startsWith('error: '));
  if (!line) return `exit ${exec.code} without an "error:" line: ${firstLine(exec.stderr || exec.stdout)}`;
  const code = /^error: ([A-Z][A-Z_]+): /.exec(line)?.[1];
  if (code === undefined) {
    return exec.code === 2 || exec.code === 3 ? undefined : `exit ${exec.code} with an uncoded error: ${line}`;
  }
  const problem = codeProblem(code, line.slice(`error: ${code}: `.length), false);
  if (problem) return problem;
  const expected = ERROR_CODES[code as keyof typeof ERROR_CODES].exitCode;
  return exec.code === expected ? undefined : `exit ${exec.code} with ${code}, which documents exit ${expected}`;
}

/** What an in-process case ended with (the case worker's answer, or the runner's verdict). */
export type Outcome =
  | { readonly kind: 'ok'; readonly summary: string }
  | {
      readonly kind: 'error';
      readonly code: string;
      readonly message: string;
      /** Bytes of the error as the CLI would print it (text or JSON, the larger). */
      readonly printedBytes: number;
      /** Bytes of its longest message (its own or a problem's). */
      readonly longestMessageBytes: number;
      readonly problemCodes: readonly string[];
    }
  | { readonly kind: 'threw'; readonly name: string; readonly message: string; readonly stack: string }
  | { readonly kind: 'hang'; readonly ms: number }
  | { readonly kind: 'crash'; readonly message: string };

/** The symptom of an in-process outcome that breaks the contract, or undefined. */
export function judgeOutcome(outcome: Outcome): string | undefined {
  switch (outcome.kind) {
    case 'ok':
      return undefined;
    case 'hang':
      return `hang: no answer within ${Math.round(outcome.ms / 1000)} s`;
    case 'crash':
      return `crash: ${outcome.message}`;
    case 'threw':
      return `threw ${outcome.name}: ${outcome.message}`;
    case 'error': {
      const problem = codeProblem(outcome.code, outcome.message, false);
      if (problem) return problem;
      for (const code of outcome.problemCodes) {
        const bad = codeProblem(code, 'a problem of the error', false);
        if (bad) return bad;
      }
      if (outcome.longestMessageBytes > MESSAGE_LIMIT_BYTES) {
        return `an error message echoes a huge input: ${kib(outcome.longestMessageBytes)} in one message (over ${kib(MESSAGE_LIMIT_BYTES)})`;
      }
      if (outcome.printedBytes > OUTPUT_LIMIT_BYTES) {
        return `an error lists too much: ${outcome.problemCodes.length} problems, ${mib(outcome.printedBytes)} as printed (over ${mib(OUTPUT_LIMIT_BYTES)})`;
      }
      return undefined;
    }
  }
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '(no output)';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** A symptom with its ids, numbers and quoted values blurred, so that alike failures group. */
export function symptomGroup(symptom: string): string {
  return symptom
    .replace(/"(?:[^"\\]|\\.){0,400}"/g, '"…"')
    .replace(/'[^'\n]{0,400}'/g, "'…'")
    .replace(/\/(?:tmp|var|private)\/\S+/g, '<path>')
    .replace(/\b\d+(?:\.\d+)?\b/g, 'N')
    .slice(0, 200);
}

/** A short, escaped look at an input for a failure message. */
export function preview(input: string | Uint8Array, max = 240): string {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  const shown = JSON.stringify(text.length > max ? text.slice(0, max) : text);
  return `${shown}${text.length > max ? '…' : ''} (${size} bytes)`;
}

export interface Finding {
  readonly index: number;
  /** What the case was, in words (the seed document and its mutations, the command). */
  readonly label: string;
  readonly symptom: string;
  /** The input and the output, for the report. */
  readonly detail: string;
}

/** The failing cases of one suite, reported together. */
export class Findings {
  private readonly found: Finding[] = [];
  private ran = 0;
  private slowest = { ms: 0, label: '' };

  constructor(
    readonly suite: string,
    readonly seed: number,
  ) {}

  /** Records a case that ran; a symptom makes it a failure. BATON_FUZZ_VERBOSE=1 prints every case. */
  record(index: number, label: string, ms: number, symptom: string | undefined, detail: () => string): void {
    this.ran++;
    if (process.env.BATON_FUZZ_VERBOSE === '1') {
      console.info(`${this.suite} #${index} ${Math.round(ms)} ms ${symptom ?? 'ok'}: ${label.slice(0, 300)}`);
    }
    if (ms > this.slowest.ms) this.slowest = { ms, label };
    if (symptom !== undefined) this.found.push({ index, label, symptom, detail: detail() });
  }

  get failures(): readonly Finding[] {
    return this.found;
  }

  /** True once MAX_HANGS cases hung: the rest would mostly wait. */
  tooManyHangs(): boolean {
    return this.found.filter((f) => f.symptom.startsWith('hang')).length >= MAX_HANGS;
  }

  summary(): string {
    return `${this.suite}: ${this.ran} cases, ${this.found.length} failed, slowest ${Math.round(this.slowest.ms)} ms (${this.slowest.label}); seed ${this.seed}`;
  }

  /** Fails with the report when any case failed. */
  assertNone(): void {
    const report = this.report();
    if (report !== '') throw new Error(report);
  }

  /** The report of every failure, grouped by symptom; empty when there is none. */
  report(examplesPerGroup = 3): string {
    if (this.found.length === 0) return '';
    const groups = new Map<string, Finding[]>();
    for (const f of this.found) {
      const key = symptomGroup(f.symptom);
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    const lines = [
      `${this.suite}: ${this.found.length} of ${this.ran} cases failed, in ${groups.size} group(s).`,
      `Seed ${this.seed}: BATON_FUZZ_SEED=${this.seed} runs the same cases again.`,
    ];
    for (const [, members] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
      lines.push('', `[${members.length} case(s)] ${(members[0] as Finding).symptom}`);
      for (const f of members.slice(0, examplesPerGroup)) {
        lines.push(`  case #${f.index}: ${f.label}`, `    ${f.detail.replace(/\n/g, '\n    ')}`);
      }
    }
    return lines.join('\n');
  }
}
