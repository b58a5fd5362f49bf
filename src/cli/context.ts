/**
 * What a command handler may touch: where it runs, its environment, and its two output
 * streams. Handlers return an exit code; they never call process.exit themselves except
 * through `exit` for signals.
 */
import type { RuntimeOptions } from '../app/runtime.js';

export interface CliContext {
  readonly runtime: RuntimeOptions;
  stdout(text: string): void;
  /** Standard output as a byte stream, for commands that print bytes as they are (`baton data cat`). */
  readonly stdoutStream?: NodeJS.WritableStream;
  stderr(text: string): void;
  exit(code: number): void;
}
