/**
 * Fuzz of webhook calls against a real `baton dev`: garbage and huge JSON bodies, wrong
 * content types, odd paths and methods, odd headers (idempotency keys, signatures, bytes
 * outside Latin-1) and lying framing (Content-Length too short or too long, chunked),
 * sent raw over TCP. Every call gets an HTTP answer, 2xx or 4xx (a 5xx is Baton failing,
 * not the caller), within the case deadline; the process stays up, still takes a good
 * call afterwards, prints no stack, and stops cleanly.
 */
import { createHmac } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { CASE_DEADLINE_MS, Findings, fuzzSeed, judgeCli, preview, scaled } from './oracle.js';
import type { Running } from './processes.js';
import { TempDirs, freePort, killAll, rawRequest, startBaton } from './processes.js';
import { CLI_SIZES, jsonBodyArb } from './values.js';

const SECRET = 'fuzz-hook-secret';
const PARAMS = ['s', 'n', 'i', 'b', 'o', 'l'];

const HOOKS = `name: hooks
params:
  s: { type: string, default: a }
  n: { type: number, default: 1 }
  i: { type: integer, default: 1 }
  b: { type: boolean, default: true }
  o: { type: object, default: {} }
  l: { type: array, default: [] }
triggers:
  open: { kind: webhook }
  signed: { kind: webhook, secret_env: FUZZ_HOOK_SECRET }
tasks:
  work:
    kind: shell
    command: [echo, ok]
    retry: { max_attempts: 1 }
`;

/** A second flow with a webhook named \`open\`: /hooks/open is then ambiguous (409). */
const OTHER = `name: other
triggers:
  open: { kind: webhook }
tasks:
  work: { kind: shell, command: [echo, ok] }
`;

const temp = new TempDirs();

afterAll(async () => {
  await killAll();
  temp.removeAll();
});

interface HookCall {
  readonly label: string;
  readonly head: (port: number) => Buffer;
  readonly body: Buffer;
  /**
   * The framing lies (the body is cut short, or bytes follow it that are not a request): the
   * server may rightly close the connection before or instead of answering; only the
   * process must survive, and an answer that does come is still judged.
   */
  readonly answerOptional: boolean;
}

/** Paths of the two webhooks, so that most calls reach the params check. */
const GOOD_PATHS = ['/hooks/hooks/open', '/hooks/hooks/signed', '/hooks/signed'];

const ODD_PATHS = [
  '/hooks/open',
  '/hooks/nope',
  '/hooks/hooks/open?x=1&x=2',
  '/hooks/%ZZ',
  '/hooks/%00',
  '/hooks/%E0%A4%A',
  '/hooks/hooks%2Fopen',
  '/hooks/a/b/c/d',
  '/hooks/',
  '/',
  '//hooks//hooks//open',
  '/hooks/../hooks/hooks/open',
  `/hooks/${'x'.repeat(8000)}`,
  '*',
  'http://127.0.0.1/hooks/hooks/open',
];

const METHODS = [
  'POST',
  'POST',
  'POST',
  'POST',
  'POST',
  'GET',
  'PUT',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'post',
  'P\u00d6ST',
  'X'.repeat(64),
];

const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  '',
  '\u00ff\u00fe',
  undefined,
];

const HEADERS = [
  '',
  '',
  'Idempotency-Key: k1',
  'Idempotency-Key: k1',
  'Idempotency-Key: ',
  `Idempotency-Key: ${'k'.repeat(8000)}`,
  'Idempotency-Key: \u00e9\u00e8',
  'Idempotency-Key: a\r\nIdempotency-Key: b',
  'X-Baton-Signature: sha256=zz',
  'X-Baton-Signature: sha1=00',
  `X-Baton-Signature: sha256=${'0'.repeat(64)}`,
  `X-Baton-Signature: sha256=${'a'.repeat(10_000)}`,
  'Expect: 100-continue',
  'Content-Encoding: gzip',
  'X-Forwarded-For: 10.0.0.1',
  `X-Long: ${'v'.repeat(20_000)}`,
  'Bad Header: x',
  'X-Nul: a\u0000b',
];

/** Methods the HTTP parser knows; any other request line is refused by it, before Baton sees the call. */
const METHOD = /^(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH)$/;
/** Headers the HTTP parser refuses (a space in a name, a NUL in a value, a second header in a value). */
const MALFORMED_HEADERS = new Set(['Bad Header: x', 'X-Nul: a\u0000b']);

type Framing = 'exact' | 'exact' | 'chunked' | 'bad-chunk' | 'short' | 'long' | 'none';
const FRAMINGS: Framing[] = ['exact', 'exact', 'exact', 'chunked', 'bad-chunk', 'short', 'long', 'none'];

/** Framings after which the server may rightly drop the connection: a cut body, or bytes that are not a request. */
const LYING = new Set<Framing>(['short', 'long', 'none', 'bad-chunk']);

function callArb(): fc.Arbitrary<() => HookCall> {
  const bodies = fc.oneof(
    {
      weight: 6,
      arbitrary: jsonBodyArb(PARAMS, CLI_SIZES).map((b) => ({
        label: b.label,
        bytes: () => Buffer.from(b.text(), 'utf8'),
      })),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 2048 })
        .map((b) => ({ label: `${b.length} random bytes`, bytes: () => Buffer.from(b) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(1024 * 1024 + 1, 3 * 1024 * 1024)
        .map((n) => ({ label: `${n} bytes of [`, bytes: () => Buffer.alloc(n, '[') })),
    },
  );
  // Well-formed calls with fuzzed bodies, so that most bodies reach the params check; then anything goes.
  const wellFormed = fc.record({
    method: fc.constant('POST'),
    path: fc.constantFrom(...GOOD_PATHS),
    type: fc.constant('application/json'),
    header: fc.constantFrom('', 'Idempotency-Key: k1', 'Idempotency-Key: k2'),
    sign: fc.constant(true),
    framing: fc.constantFrom<Framing>('exact', 'chunked'),
    body: bodies,
  });
  const anything = fc.record({
    method: fc.constantFrom(...METHODS),
    path: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...GOOD_PATHS) },
      { weight: 2, arbitrary: fc.constantFrom(...ODD_PATHS) },
    ),
    type: fc.constantFrom(...CONTENT_TYPES),
    header: fc.constantFrom(...HEADERS),
    sign: fc.boolean(),
    framing: fc.constantFrom(...FRAMINGS),
    body: bodies,
  });
  return fc.oneof({ weight: 1, arbitrary: wellFormed }, { weight: 1, arbitrary: anything }).map((r) => (): HookCall => {
    const body = r.body.bytes();
    const headers = [
      ...(r.type === undefined ? [] : [`Content-Type: ${r.type}`]),
      ...(r.header ? [r.header] : []),
      ...(r.sign ? [`X-Baton-Signature: sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`] : []),
    ];
    let sent = body;
    switch (r.framing) {
      case 'exact':
      case 'short':
      case 'long':
        headers.push(
          `Content-Length: ${r.framing === 'short' ? body.length + 100 : r.framing === 'long' ? Math.floor(body.length / 2) : body.length}`,
        );
        break;
      case 'chunked':
        headers.push('Transfer-Encoding: chunked');
        sent = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
        break;
      case 'bad-chunk':
        headers.push('Transfer-Encoding: chunked');
        sent = Buffer.concat([Buffer.from('zz\r\n'), body]);
        break;
      case 'none':
        break;
    }
    const label = `${preview(r.method, 12)} ${preview(r.path, 40)} type ${JSON.stringify(r.type)} ${preview(r.header, 40)}${r.sign ? ' signed' : ''} framing ${r.framing}, body ${r.body.label}`;
    return {
      label,
      head: (port) =>
        Buffer.from(
          [`${r.method} ${r.path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close', ...headers].join('\r\n'),
          'latin1',
        ),
      body: sent,
      answerOptional:
        body.length > 0 && (LYING.has(r.framing) || !METHOD.test(r.method) || MALFORMED_HEADERS.has(r.header)),
    };
  });
}

function project(): string {
  const dir = temp.make('baton-fuzz-hooks-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'flows', 'hooks.yaml'), HOOKS);
  writeFileSync(join(dir, 'flows', 'other.yaml'), OTHER);
  return dir;
}

async function startDev(dir: string): Promise<{ dev: Running; port: number }> {
  const port = await freePort();
  const dev = startBaton(['--db', join(dir, 'baton.db'), 'dev', '--port', String(port)], {
    cwd: dir,
    deadlineMs: 600_000,
    env: { FUZZ_HOOK_SECRET: SECRET },
  });
  await waitFor(() => (!dev.alive() || /baton dev: executing runs/.test(dev.stderr()) ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 50,
    what: 'baton dev to start',
  });
  if (!dev.alive()) throw new Error(`baton dev exited at start:\n${dev.stderr()}`);
  return { dev, port };
}

it('answers every fuzzed webhook call with 2xx or 4xx, and stays up', async () => {
  const seed = fuzzSeed() + 40;
  const findings = new Findings('webhook calls to baton dev', seed);
  const dir = project();
  const { dev, port } = await startDev(dir);
  const calls = fc.sample(callArb(), { seed, numRuns: scaled(200) });
  for (const [i, make] of calls.entries()) {
    if (!dev.alive()) break;
    const call = make();
    const answer = await rawRequest(port, call.head(port), call.body, CASE_DEADLINE_MS);
    const error = /"code":"([A-Z_]+)","message":"((?:[^"\\]|\\.){0,200})/.exec(answer.body);
    const bad =
      answer.status !== null &&
      (answer.status >= 500 || answer.status < 200 || (answer.status >= 300 && answer.status < 400));
    const symptom =
      answer.status === null
        ? call.answerOptional
          ? undefined
          : `no answer: ${answer.failure ?? 'none'}`
        : bad
          ? `HTTP ${answer.status}${error ? ` ${error[1]}: ${error[2]}` : ''}`
          : undefined;
    findings.record(
      i,
      `${call.label} → ${answer.status ?? answer.failure}`,
      answer.ms,
      symptom,
      () => `request body ${preview(call.body)}\n→ ${answer.status ?? answer.failure} ${preview(answer.body, 200)}`,
    );
  }
  // The process must still be up and still take a good call.
  const alive = dev.alive();
  const good = alive
    ? await rawRequest(
        port,
        Buffer.from(
          `POST /hooks/hooks/open HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 10`,
        ),
        Buffer.from('{"s":"ok"}'),
        CASE_DEADLINE_MS,
      )
    : undefined;
  dev.kill('SIGTERM');
  const stopping = setTimeout(() => dev.kill('SIGKILL'), CASE_DEADLINE_MS);
  const end = await dev.done;
  clearTimeout(stopping);
  console.info(findings.summary());
  const stderr = dev.stderr();
  expect(alive, `baton dev exited during the calls:\n${stderr.slice(-4000)}`).toBe(true);
  expect(good?.status, `a good call after the fuzzed ones: ${good?.status ?? good?.failure} ${good?.body ?? ''}`).toBe(
    202,
  );
  findings.assertNone();
  expect(judgeCli(end), 'baton dev, from start to stop').toBeUndefined();
  expect(stderr, 'baton dev reported a bug in itself').not.toMatch(/INTERNAL/);
  expect(end.signal, `baton dev did not stop within ${CASE_DEADLINE_MS} ms of SIGTERM`).toBeNull();
  expect(end.code, `baton dev stopped with ${end.code ?? end.signal}:\n${stderr.slice(-2000)}`).toBe(0);
}, 600_000);
