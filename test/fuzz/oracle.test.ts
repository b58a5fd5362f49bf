/**
 * The fuzz suite's own checks: the oracle finds each way a case can break the contract
 * (else every fuzz test would pass whatever Baton did), and the runners turn a case that
 * outlives its deadline into a hang: the case thread is replaced, the process is killed.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../e2e/cli-helpers.js';
import { CaseRunner } from './in-process.js';
import { Findings, judgeCli, judgeOutcome, symptomGroup } from './oracle.js';
import type { Exec } from './processes.js';
import { TempDirs, runBaton, startBaton } from './processes.js';
import { freePort } from '../helpers/ports.js';

function exec(over: Partial<Exec>): Exec {
  return {
    code: 0,
    signal: null,
    stdout: '',
    stderr: '',
    stdoutBytes: 0,
    stderrBytes: 0,
    ms: 10,
    peakRssMb: 50,
    ...over,
  };
}

const json = (code: string, message = 'm') => `${JSON.stringify({ error: { code, message } })}\n`;

describe('judgeCli', () => {
  it('passes exit 0, and a coded error with the exit its code documents', () => {
    expect(judgeCli(exec({}))).toBeUndefined();
    expect(judgeCli(exec({ code: 2, stderr: json('USAGE') }))).toBeUndefined();
    expect(judgeCli(exec({ code: 4, stderr: `using project x\n${json('RUN_NOT_FOUND')}` }))).toBeUndefined();
  });

  it('fails a stack trace, INTERNAL, an uncoded or mis-coded exit, a hang, a leak, a refused value taken', () => {
    const trace = 'TypeError: x\n    at parse (file:///p/dist/a.js:1:2)\n';
    expect(judgeCli(exec({ code: 1, stderr: trace }))).toMatch(/^stack trace printed/);
    expect(judgeCli(exec({ code: 70, stderr: json('INTERNAL', 'a bug') }))).toBe('INTERNAL: a bug');
    expect(judgeCli(exec({ code: 1, stderr: 'boom' }))).toMatch(/^exit 1 without a coded error/);
    expect(judgeCli(exec({ code: 3, stderr: json('USAGE') }))).toBe('exit 3 with USAGE, which documents exit 2');
    expect(judgeCli(exec({ code: 6, stderr: json('STORE_IO') }))).toMatch(/^store error for a bad input/);
    expect(judgeCli(exec({ code: 6, stderr: json('STORE_IO') }), { storeErrors: true })).toBeUndefined();
    expect(judgeCli(exec({ code: null, signal: 'SIGKILL', killed: 'deadline', ms: 30_000 }))).toBe(
      'hang: no exit within 30 s',
    );
    expect(judgeCli(exec({ code: 2, stderr: `pw=s3cret\n${json('USAGE')}` }), { secrets: ['s3cret'] })).toBe(
      'a secret was printed',
    );
    expect(judgeCli(exec({}), { refuse: true })).toBe('a bad value was accepted (exit 0)');
    expect(judgeCli(exec({ code: 2, stderr: json('USAGE'), stderrBytes: 2 * 1024 * 1024 }))).toMatch(
      /^printed 2\.0 MiB of errors/,
    );
  });

  it('reads `validate --json` and `run --json` results, and text errors', () => {
    const validate = JSON.stringify({ ok: false, files: [{ problems: [{ code: 'DEF_INVALID' }] }] });
    expect(judgeCli(exec({ code: 3, stdout: validate }), { validateJson: true })).toBeUndefined();
    const internal = JSON.stringify({ ok: false, files: [{ problems: [{ code: 'INTERNAL' }] }] });
    expect(judgeCli(exec({ code: 3, stdout: internal }), { validateJson: true })).toMatch(/^INTERNAL/);
    const failed = JSON.stringify({ state: 'failed', error: { code: 'TASK_FAILED', message: 'm' } });
    expect(judgeCli(exec({ code: 1, stdout: failed }), { runJson: true })).toBeUndefined();
    expect(
      judgeCli(exec({ code: 4, stderr: 'error: RUN_NOT_FOUND: no run\n  hint: h' }), { text: true }),
    ).toBeUndefined();
    expect(judgeCli(exec({ code: 70, stderr: 'error: INTERNAL: a bug in Baton' }), { text: true })).toMatch(
      /^INTERNAL/,
    );
  });
});

describe('judgeOutcome', () => {
  it('fails a throw, a hang, a crash, INTERNAL, and errors too big to print', () => {
    expect(judgeOutcome({ kind: 'ok', summary: '' })).toBeUndefined();
    const error = {
      kind: 'error',
      code: 'DEF_INVALID',
      message: 'm',
      printedBytes: 100,
      longestMessageBytes: 10,
      problemCodes: ['DEF_INVALID'],
    } as const;
    expect(judgeOutcome(error)).toBeUndefined();
    expect(judgeOutcome({ ...error, problemCodes: ['INTERNAL'] })).toMatch(/^INTERNAL/);
    expect(judgeOutcome({ ...error, longestMessageBytes: 100_000 })).toMatch(/^an error message echoes a huge input/);
    expect(judgeOutcome({ ...error, printedBytes: 5_000_000 })).toMatch(/^an error lists too much/);
    expect(
      judgeOutcome({ kind: 'threw', name: 'RangeError', message: 'Maximum call stack size exceeded', stack: '' }),
    ).toBe('threw RangeError: Maximum call stack size exceeded');
    expect(judgeOutcome({ kind: 'hang', ms: 30_000 })).toBe('hang: no answer within 30 s');
    expect(judgeOutcome({ kind: 'crash', message: 'ERR_WORKER_OUT_OF_MEMORY' })).toBe(
      'crash: ERR_WORKER_OUT_OF_MEMORY',
    );
  });
});

describe('Findings', () => {
  it('groups alike failures, and names the seed that reproduces them', () => {
    const findings = new Findings('suite', 42);
    findings.record(0, 'a', 1, undefined, () => '');
    findings.record(1, 'b', 1, 'threw RangeError: bad "x" at 12', () => 'one');
    findings.record(2, 'c', 1, 'threw RangeError: bad "y" at 13', () => 'two');
    const report = findings.report();
    expect(report).toContain('suite: 2 of 3 cases failed, in 1 group(s).');
    expect(report).toContain('BATON_FUZZ_SEED=42');
    expect(symptomGroup('threw RangeError: bad "x" at 12')).toBe(symptomGroup('threw RangeError: bad "y" at 13'));
    expect(() => findings.assertNone()).toThrow(/BATON_FUZZ_SEED=42/);
  });
});

describe('CaseRunner', () => {
  const runner = new CaseRunner({ tasksModule: '' });
  afterAll(() => runner.close());

  it('turns a case past its deadline into a hang, then runs the next case on a fresh thread', async () => {
    const slow = Buffer.from(`${Array.from({ length: 50_000 }, (_, i) => `k${i}: ${i}`).join('\n')}\n`);
    const first = await runner.run({ target: 'config', bytes: slow }, 1);
    expect(first.outcome.kind).toBe('hang');
    const next = await runner.run({ target: 'config', bytes: Buffer.from('concurrency: 4\n') }, 60_000);
    expect(next.outcome).toMatchObject({ kind: 'ok' });
  }, 180_000);
});

describe('runBaton', () => {
  it('kills a process that outlives its deadline, and says so', async () => {
    const temp = new TempDirs();
    const dir = temp.make('baton-fuzz-self-');
    try {
      mkdirSync(join(dir, 'flows'));
      const args = ['--db', join(dir, 'baton.db'), 'dev', '--no-webhooks', '--port', String(await freePort())];
      const running = startBaton(args, { cwd: dir, deadlineMs: 1500 });
      const result = await running.done;
      expect(result.killed).toBe('deadline');
      expect(isAlive(running.pid)).toBe(false);
      expect(judgeCli(result)).toMatch(/^hang/);
      expect((await runBaton(['--version'], { cwd: dir, deadlineMs: 30_000 })).code).toBe(0);
    } finally {
      temp.removeAll();
    }
  }, 60_000);
});
