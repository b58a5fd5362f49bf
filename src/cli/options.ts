/**
 * The numeric options of the command line, in one table: what each accepts and its range,
 * taken from the table of limits where one applies. Every command declares these options
 * through `cliOption`, so that a value out of range is refused the same way everywhere,
 * while the command line is parsed and before anything is opened: a USAGE error (exit 2)
 * that names the option and the range. Plain parsing rather than the schema library keeps
 * `baton --version` from loading it.
 */
import { Option } from 'commander';
import { formatDuration, parseDuration } from '../core/duration.js';
import { BatonError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';

interface CountSpec {
  readonly kind: 'count';
  readonly min: number;
  readonly max: number;
}

interface DurationSpec {
  readonly kind: 'duration';
  /** In ms. */
  readonly min: number;
  readonly max: number;
}

export type OptionSpec = CountSpec | DurationSpec;

/** Largest TCP port. */
const MAX_PORT = 65_535;

/** Every numeric option, by its flags as commands declare them. */
export const CLI_OPTIONS = {
  '--limit <n>': { kind: 'count', min: 1, max: LIMITS.list_rows.max },
  '-c, --concurrency <n>': { kind: 'count', min: 1, max: LIMITS.concurrency.max },
  '--port <n>': { kind: 'count', min: 1, max: MAX_PORT },
  '--webhook-port <n>': { kind: 'count', min: 1, max: MAX_PORT },
  '--max-parallel <n>': { kind: 'count', min: 1, max: LIMITS.backfill_parallel.max },
  '--older-than <duration>': { kind: 'duration', min: 0, max: LIMITS.duration_ms.max },
} as const satisfies Record<string, OptionSpec>;

export type CliOptionFlags = keyof typeof CLI_OPTIONS;

/** The long name of an option (`--limit`), as messages name it. */
function longName(flags: string): string {
  return /--[a-z-]+/.exec(flags)?.[0] ?? flags;
}

/** The range of an option as people read it: `an integer from 1 to 10000`, `a duration from 0ms to 366d`. */
export function describeRange(spec: OptionSpec): string {
  return spec.kind === 'count'
    ? `an integer from ${spec.min} to ${spec.max}`
    : `a duration from ${formatDays(spec.min)} to ${formatDays(spec.max)} (such as 90s, 12h or 30d)`;
}

/** Durations of options are written in days when they are whole days (`366d`), else as usual. */
function formatDays(ms: number): string {
  const day = 86_400_000;
  if (ms === 0) return '0s';
  return ms % day === 0 ? `${ms / day}d` : formatDuration(ms);
}

/**
 * Parses the text given to an option by its spec; throws USAGE naming the option and its range.
 * Example: `parseOptionValue('--limit <n>', '20')` → 20; `parseOptionValue('--limit <n>', '0')` throws
 * `--limit 0: must be an integer from 1 to 10000`.
 */
export function parseOptionValue(flags: CliOptionFlags, text: string): number {
  const spec: OptionSpec = CLI_OPTIONS[flags];
  const name = longName(flags);
  const value = text.trim();
  // Digits only: `1e3`, `0x10`, `+5` and `5.0` are not what a count is written as.
  const parsed = spec.kind === 'count' ? (/^\d+$/.test(value) ? Number(value) : undefined) : parseDuration(value);
  if (parsed === undefined || !Number.isFinite(parsed) || parsed < spec.min || parsed > spec.max) {
    const range = describeRange(spec);
    throw new BatonError('USAGE', `${name} ${JSON.stringify(text)}: must be ${range}`, {
      hint: `Give ${name} ${range}; see \`baton <command> --help\`.`,
      details: { option: name, value: text, min: spec.min, max: spec.max },
    });
  }
  return parsed;
}

/**
 * A commander option whose value is parsed by `parseOptionValue`. The BatonError it throws
 * is not one of commander's own, so commander lets it through and the CLI prints it as
 * any other coded error (text, or JSON with --json).
 */
export function cliOption(flags: CliOptionFlags, description: string): Option {
  const spec: OptionSpec = CLI_OPTIONS[flags];
  const range =
    spec.kind === 'count' ? `${spec.min} to ${spec.max}` : `${formatDays(spec.min)} to ${formatDays(spec.max)}`;
  return new Option(flags, `${description}; ${range}`).argParser((text: string) => parseOptionValue(flags, text));
}
