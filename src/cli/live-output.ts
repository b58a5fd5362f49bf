/**
 * What `run`, `resume`, `retry` and `backfill --wait` print while work happens: finished
 * lines (task log lines, progress lines) on stderr, and, on a terminal only, one status
 * line kept at the bottom and redrawn in place. Off a terminal the status line is never
 * written, so that logs, pipes and tests see finished lines only.
 *
 * Invariant: on a terminal, the status line is the last thing on the screen and has no
 * newline; every finished line erases it first and draws it again after, and `close`
 * leaves the cursor at the start of an empty line.
 */
import type { CliContext } from './context.js';

/** A terminal to draw on: raw writes (no newline added) and its width. */
export interface Terminal {
  write(text: string): void;
  readonly columns: number;
}

/** Back to the line's start, and erase it. */
const ERASE_LINE = '\r\x1b[K';

/**
 * The process's stderr when it is a terminal that understands ANSI erase, else null.
 * `TERM=dumb` (some editors' consoles) gets finished lines only.
 */
export function stderrTerminal(env: NodeJS.ProcessEnv): Terminal | null {
  if (!process.stderr.isTTY || env.TERM === 'dumb') return null;
  return {
    write: (text) => void process.stderr.write(text),
    get columns() {
      return process.stderr.columns || 80;
    },
  };
}

export interface LiveOutput {
  /** True when a status line is drawn (stderr is a terminal). */
  readonly interactive: boolean;
  /** A finished line (or several): printed above the status line. */
  line(text: string): void;
  /** Replaces the status line; ignored off a terminal. */
  status(text: string): void;
  /** Erases the status line for good; later output starts on a clean line. */
  close(): void;
}

export function createLiveOutput(ctx: CliContext, terminal: Terminal | null): LiveOutput {
  if (!terminal) {
    return { interactive: false, line: (text) => ctx.stderr(text), status: () => undefined, close: () => undefined };
  }
  let current = '';
  let closed = false;
  // A status wider than the terminal wraps, and `\r` would then redraw only its last row.
  const fit = (text: string) => {
    const width = Math.max(10, terminal.columns - 1);
    const chars = [...text.replace(/\s*\n[\s\S]*$/, '')];
    return chars.length > width ? `${chars.slice(0, width - 1).join('')}…` : chars.join('');
  };
  return {
    interactive: true,
    line(text) {
      if (closed) {
        ctx.stderr(text);
        return;
      }
      terminal.write(`${ERASE_LINE}${text}\n${current}`);
    },
    status(text) {
      if (closed) return;
      const next = fit(text);
      if (next === current) return;
      current = next;
      terminal.write(`${ERASE_LINE}${current}`);
    },
    close() {
      if (closed) return;
      closed = true;
      if (current !== '') terminal.write(ERASE_LINE);
      current = '';
    },
  };
}
