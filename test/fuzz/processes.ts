/**
 * The processes and sockets of the fuzz suite: `baton` run with a deadline, a cap on the
 * output kept and on memory, and raw HTTP requests to a webhook listener.
 *
 * Invariants
 * - Every process has a deadline; one that outlives it, or grows past its memory cap, is
 *   killed (SIGKILL) and its result says why, so that a hang or a runaway allocation is a
 *   failing case and never a stuck or swapping CI machine.
 * - `killAll` kills whatever is still running: each test file calls it after its tests.
 * - Children get the parent's environment minus `BATON_*`, plus what the case sets.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createConnection, createServer } from 'node:net';
import { BATON_BIN } from '../e2e/cli-helpers.js';

/** Output kept per stream; what is beyond is counted, not kept. */
export const KEPT_OUTPUT_BYTES = 2 * 1024 * 1024;

export interface Exec {
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Bytes written on each stream, kept or not. */
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
  readonly ms: number;
  /** Largest resident set seen (VmHWM), in MiB; 0 when the process ended before a sample. */
  readonly peakRssMb: number;
  /** Set when the harness killed the process. */
  readonly killed?: 'deadline' | 'memory';
}

export interface ExecOptions {
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Kill after this many ms. */
  readonly deadlineMs: number;
  /** Kill when the resident set grows past this many MiB. Default 1024. */
  readonly rssCapMb?: number;
}

const live = new Set<ChildProcess>();

function childEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_')) env[k] = v;
  return { ...env, ...extra };
}

/** VmHWM and VmRSS of a live process, in KiB, or undefined once it is gone. */
export function memoryOf(pid: number): { hwmKb: number; rssKb: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // Gone (or no /proc): the last sample stands.
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { hwmKb: kb('VmHWM'), rssKb: kb('VmRSS') };
}

/** A running `baton` process, with its output so far. */
export interface Running {
  readonly pid: number;
  /** False once the process has ended. */
  alive(): boolean;
  stdout(): string;
  stderr(): string;
  readonly done: Promise<Exec>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts `node bin/baton.js <args>`; `done` settles when it ends or is killed. */
export function startBaton(args: readonly string[], options: ExecOptions): Running {
  const started = performance.now();
  const child = spawn(process.execPath, [BATON_BIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const out = { stdout: '', stderr: '', bytes: { stdout: 0, stderr: 0 } };
  const keep = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    out.bytes[stream] += chunk.length;
    if (out[stream].length < KEPT_OUTPUT_BYTES) out[stream] += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep('stdout'));
  child.stderr?.on('data', keep('stderr'));
  let killed: Exec['killed'];
  let peakKb = 0;
  const capKb = (options.rssCapMb ?? 1024) * 1024;
  const sample = () => {
    if (child.pid === undefined) return;
    const mem = memoryOf(child.pid);
    if (!mem) return;
    peakKb = Math.max(peakKb, mem.hwmKb);
    if (mem.rssKb > capKb && !killed) {
      killed = 'memory';
      child.kill('SIGKILL');
    }
  };
  const watch = setInterval(sample, 50);
  const deadline = setTimeout(() => {
    killed ??= 'deadline';
    child.kill('SIGKILL');
  }, options.deadlineMs);
  const done = new Promise<Exec>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      clearInterval(watch);
      clearTimeout(deadline);
      live.delete(child);
      resolve({
        code,
        signal,
        stdout: out.stdout,
        stderr: out.stderr,
        stdoutBytes: out.bytes.stdout,
        stderrBytes: out.bytes.stderr,
        ms: performance.now() - started,
        peakRssMb: peakKb / 1024,
        ...(killed ? { killed } : {}),
      });
    };
    child.on('error', (error) => {
      out.stderr += `cannot spawn baton: ${error.message}`;
      finish(null, null);
    });
    child.on('close', finish);
  });
  let ended = false;
  void done.then(() => (ended = true));
  return {
    pid: child.pid ?? -1,
    alive: () => !ended,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    done,
    kill: (signal) => void child.kill(signal),
  };
}

/** Runs `baton <args>` to its end (or its deadline). */
export function runBaton(args: readonly string[], options: ExecOptions): Promise<Exec> {
  return startBaton(args, options).done;
}

/** Kills every process this module started that is still running. */
export async function killAll(): Promise<void> {
  const left = [...live];
  const ended = left.map(
    (c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('close', () => resolve()))),
  );
  for (const c of left) c.kill('SIGKILL');
  await Promise.all(ended);
}

/** The temp folders of a test file, removed together when it ends. */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  removeAll(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** Runs `jobs` with at most `width` at a time, keeping their order in the result. */
export async function inParallel<T, R>(
  items: readonly T[],
  width: number,
  job: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await job(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return results;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RawResponse {
  /** The status of the response, or null when none arrived. */
  readonly status: number | null;
  readonly body: string;
  /** Why no response arrived (a reset, the deadline), when none did. */
  readonly failure?: string;
  readonly ms: number;
}

/**
 * Sends `head` (request line and headers, CRLF-separated, without the blank line) and
 * `body` over a fresh TCP connection, and reads the response until the server closes the
 * connection or the deadline. Raw, so that a case can send what an HTTP client refuses to:
 * a wrong Content-Length, bytes outside Latin-1 in a header, a malformed request line.
 */
export function rawRequest(port: number, head: Buffer, body: Buffer, deadlineMs: number): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (failure?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      // Interim answers (100 Continue) come before the response proper: skip them.
      const text = Buffer.concat(chunks)
        .toString('latin1')
        .replace(/^(?:HTTP\/1\.[01] 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)+/, '');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      const bodyStart = text.indexOf('\r\n\r\n');
      resolve({
        status: status === undefined ? null : Number(status),
        body: bodyStart < 0 ? '' : text.slice(bodyStart + 4, bodyStart + 4 + 4096),
        ms: performance.now() - started,
        ...(status === undefined ? { failure: failure ?? 'the connection closed without a response' } : {}),
      });
    };
    const timer = setTimeout(() => finish(`no response within ${deadlineMs} ms`), deadlineMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A reset while the body is still being written (after a 413, say) is judged by what arrived.
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    // Half-closed after the request: a server waiting for more body than was sent sees the end.
    socket.on('connect', () => socket.end(Buffer.concat([head, Buffer.from('\r\n\r\n'), body])));
  });
}
