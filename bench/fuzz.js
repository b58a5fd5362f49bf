// The worst inputs of the fuzz suite (test/fuzz), at full size, through the real CLI: 10 MB of `[`, deep nesting,
// alias bombs, 200,000 keys, huge option values and params files. Each must end with exit 0 or a coded error; the
// figures are the slowest case's wall time and the largest peak resident set of a case's process.
//   fuzz_worst_case_ms  goal <= 5000
//   fuzz_peak_rss_mb    goal <= 512
// Usage: `fuzzBench(report)` with the report callback of bench/run.js, or `node bench/fuzz.js` on its own, after
// `npm run build`.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'baton.js');
/** A case that runs longer is killed; its figure is then this deadline, well over the goal. */
const DEADLINE_MS = 60_000;
/** A case whose resident set passes this is killed: the figure is over the goal either way. */
const RSS_CAP_MB = 2048;
const GNU_TIME = '/usr/bin/time';

const deep = (depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const bomb = (levels, width) => {
  const parts = [`&l0 [${Array(width).fill('"lol"').join(', ')}]`];
  for (let i = 1; i < levels; i++)
    parts.push(
      `&l${i} [${Array(width)
        .fill(`*l${i - 1}`)
        .join(', ')}]`,
    );
  return `[${parts.join(', ')}]`;
};
const manyKeys = (n, indent) => Array.from({ length: n }, (_, i) => `${indent}k${i}: ${i}`).join('\n');
const task = 'kind: shell\n    command: [echo, ok]';

/** Flow files, each validated by `baton validate <file> --json`. */
const FLOWS = {
  'flow: 10 MB of [': () => '['.repeat(10 * 1024 * 1024),
  'flow: a list nested 100,000 deep': () =>
    `name: deep\ntasks:\n  a:\n    ${task}\n    with: { v: ${deep(100_000)} }\n`,
  'flow: maps nested 100,000 deep': () =>
    `name: deep\ntasks:\n  a:\n    ${task}\n    with: ${'{a: '.repeat(100_000)}1${'}'.repeat(100_000)}\n`,
  'flow: block maps nested 2,000 deep': () =>
    `name: deep\ntasks:\n  a:\n    ${task}\n    with:\n${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(6 + 2 * i)}a:`).join('\n')} 1\n`,
  'flow: an alias bomb (10^9)': () => `name: bomb\ntasks:\n  a:\n    ${task}\n    with: { v: ${bomb(9, 10)} }\n`,
  'flow: 200,000 unknown keys': () => `name: keys\ntasks:\n  a:\n    ${task}\n${manyKeys(200_000, '')}\n`,
  'flow: a map of 200,000 keys in with': () =>
    `name: keys\ntasks:\n  a:\n    ${task}\n    with:\n${manyKeys(200_000, '      ')}\n`,
  'flow: 200,000 tasks': () =>
    `name: wide\ntasks:\n${Array.from({ length: 200_000 }, (_, i) => `  t${i}: { kind: shell, command: [echo, ok] }`).join('\n')}\n`,
  'flow: a 5 MB string': () =>
    `name: long\ntasks:\n  a:\n    ${task}\n    with: { v: "${'x'.repeat(5 * 1024 * 1024)}" }\n`,
};

const PARAMS_FLOW =
  'name: params\nparams:\n  free: { type: string, default: "" }\n  l: { type: array, default: [] }\ntasks:\n  a:\n    kind: shell\n    command: [echo, ok]\n';

/** Other commands, with huge option values or files; `dir` is a project with flows/params.yaml. */
const COMMANDS = {
  'baton.yaml: 200,000 unknown keys': (dir) => {
    writeFileSync(join(dir, 'baton.yaml'), `${manyKeys(200_000, '')}\n`);
    return ['runs'];
  },
  'baton.yaml: an alias bomb (10^9)': (dir) => {
    writeFileSync(join(dir, 'baton.yaml'), `pools: ${bomb(9, 10)}\n`);
    return ['runs'];
  },
  'params file: 12 MB': (dir) => {
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ free: 'x'.repeat(12 * 1024 * 1024) }));
    return ['run', 'params', '--params-file', join(dir, 'p.json'), '-q'];
  },
  'params file: a list nested 1,000,000 deep': (dir) => {
    writeFileSync(join(dir, 'p.json'), `{"l": ${deep(1_000_000)}}`);
    return ['run', 'params', '--params-file', join(dir, 'p.json'), '-q'];
  },
  'run -p: a 120 KB value': () => ['run', 'params', '-p', `free=${'x'.repeat(120_000)}`, '-q'],
  'run -p: a list nested 60,000 deep': () => ['run', 'params', '-p', `l=${deep(60_000)}`, '-q'],
  'runs --limit: 100,000 digits': () => ['runs', '--limit', `1${'0'.repeat(100_000)}`],
  'db prune --older-than: 100,000 digits': () => ['db', 'prune', '--older-than', `${'9'.repeat(100_000)}d`],
  'show: a 120 KB run id': () => ['show', 'r'.repeat(120_000)],
};

/** Runs one command; resolves with its exit, wall time and peak resident set. */
function measure(args, cwd) {
  const useTime = existsSync(GNU_TIME);
  const rssFile = join(cwd, `rss-${process.pid}-${Date.now()}.txt`);
  const argv = useTime
    ? [GNU_TIME, '-f', '%M', '-o', rssFile, process.execPath, bin, ...args]
    : [process.execPath, bin, ...args];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BATON_')));
  const t0 = performance.now();
  // Its own process group, so that a kill reaches node under /usr/bin/time.
  const child = spawn(argv[0], argv.slice(1), {
    cwd,
    env: { ...env, BATON_JSON_ERRORS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  let stderrBytes = 0;
  let stdoutBytes = 0;
  child.stdout.on('data', (c) => (stdoutBytes += c.length));
  child.stderr.on('data', (c) => {
    stderrBytes += c.length;
    if (stderr.length < 64 * 1024) stderr += c.toString('utf8');
  });
  let peakKb = 0;
  let killed;
  const kill = (why) => {
    killed ??= why;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  // Sampled as well: without /usr/bin/time this is the only figure, and it enforces the cap either way.
  const sample = setInterval(() => {
    for (const pid of [child.pid, ...childrenOf(child.pid)]) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        peakKb = Math.max(peakKb, hwm);
        if (rss > RSS_CAP_MB * 1024) kill('memory');
      } catch {
        // Gone, or no /proc.
      }
    }
  }, 20);
  const timer = setTimeout(() => kill('deadline'), DEADLINE_MS);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearInterval(sample);
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (useTime && existsSync(rssFile)) {
        const kb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
        if (Number.isFinite(kb)) peakKb = Math.max(peakKb, kb);
        rmSync(rssFile, { force: true });
      }
      // Under /usr/bin/time, node's own exit code is time's.
      resolve({
        code,
        signal,
        ms: killed === 'deadline' ? Math.max(ms, DEADLINE_MS) : ms,
        rssMb: peakKb / 1024,
        killed,
        stderr,
        stderrBytes,
        stdoutBytes,
      });
    });
  });
}

function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** How a case ended, for its line: ok, problems (validate), a coded error, or what broke the contract. */
function verdict(r) {
  if (r.killed) return `killed (${r.killed})`;
  if (r.signal) return `signal ${r.signal}`;
  if (/^\s+at \S/m.test(r.stderr)) return 'stack trace';
  if (r.code === 0) return 'ok';
  const line = r.stderr
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"error"'));
  // Kept output is cut at 64 KiB: the code is read from the start of the line.
  const code = line ? /^\{"error":\{"code":"([A-Z_]+)"/.exec(line)?.[1] : undefined;
  if (code === undefined)
    return r.code === 3 && r.stdoutBytes > 0 ? 'exit 3, problems reported' : `exit ${r.code}, no coded error`;
  const size = line.length >= 64 * 1024 ? ` (an error line of ${Math.round(r.stderrBytes / 1024)} KiB)` : '';
  return `exit ${r.code} ${code}${size}`;
}

/**
 * Runs every worst case once; reports `fuzz_worst_case_ms` and `fuzz_peak_rss_mb`. Each case's line goes to
 * stderr (name, wall time, peak RSS, how it ended).
 */
export async function fuzzBench(report) {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-fuzz-'));
  let worst = { ms: 0, name: '' };
  let peak = { mb: 0, name: '' };
  try {
    const cases = [
      ...Object.entries(FLOWS).map(([name, text]) => [
        name,
        (d) => {
          writeFileSync(join(d, 'flows', 'case.yaml'), text());
          return ['validate', join(d, 'flows', 'case.yaml'), '--json'];
        },
      ]),
      ...Object.entries(COMMANDS),
    ];
    for (const [i, [name, make]] of cases.entries()) {
      // A fresh project per case: a baton.yaml case must not leak into the next.
      const project = join(dir, String(i));
      mkdirSync(join(project, 'flows'), { recursive: true });
      writeFileSync(join(project, 'flows', 'params.yaml'), PARAMS_FLOW);
      const args = ['--db', join(project, 'baton.db'), ...make(project)];
      const r = await measure(args, project);
      process.stderr.write(`fuzz bench: ${name}: ${Math.round(r.ms)} ms, ${Math.round(r.rssMb)} MB, ${verdict(r)}\n`);
      if (r.ms > worst.ms) worst = { ms: r.ms, name };
      if (r.rssMb > peak.mb) peak = { mb: r.rssMb, name };
      rmSync(project, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stderr.write(`fuzz bench: slowest: ${worst.name}; largest: ${peak.name}\n`);
  report('fuzz_worst_case_ms', worst.ms, 'ms', 5000, 'lower');
  report('fuzz_peak_rss_mb', peak.mb, 'MB', 512, 'lower');
}

// On its own (after `npm run build`): `node bench/fuzz.js`.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await fuzzBench((name, value, unit, goal) =>
    console.log(`${name.padEnd(20)} ${String(Math.round(value)).padStart(8)} ${unit.padEnd(3)} goal <= ${goal}`),
  );
}
