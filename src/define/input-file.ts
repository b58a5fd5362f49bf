/**
 * The one way Baton reads a file a user names (a flow, baton.yaml, a params file, a task
 * module): it must be a regular file no larger than its limit, checked before a byte is
 * read, so that `/dev/zero`, a FIFO or a device neither hangs a command nor fills memory.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { BatonError, type ErrorCode } from '../core/errors.js';
import { LIMITS, limitExceeded, type LimitName } from '../core/limits.js';

export interface InputFileOptions {
  /** The limit on its size (`flow_file_bytes`, `input_file_bytes`). */
  readonly limit: LimitName;
  /** The limit's value, when configuration set it; the table's default otherwise. */
  readonly limitBytes?: number;
  /** Said in messages: "flow file", "params file", ... */
  readonly what: string;
  /** The code of the refusal, as the caller's surface reports it (`DEF_LOAD`, `USAGE`, `CONFIG_INVALID`). */
  readonly code: ErrorCode;
}

/**
 * Checks that `path` is a regular file within its size limit, then reads it as UTF-8.
 * Opening with O_NONBLOCK keeps a FIFO without a writer from blocking the open itself.
 * Example: `readInputFile('flows/a.yaml', { limit: 'flow_file_bytes', what: 'flow file', code: 'DEF_LOAD' })`.
 */
export function readInputFile(path: string, options: InputFileOptions): string {
  const fd = openInput(path, options);
  try {
    const size = checkOpened(fd, path, options);
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.toString('utf8', 0, read);
  } finally {
    closeSync(fd);
  }
}

/**
 * The same checks as `readInputFile`, without reading: for a file that another reader opens
 * next (a module that `import` loads), so that a FIFO or a device is refused before that
 * reader can block on it. Returns the file's size in bytes.
 * Example: `checkInputFile('tasks/load.ts', { limit: 'input_file_bytes', what: 'module', code: 'DEF_MODULE' })`.
 */
export function checkInputFile(path: string, options: InputFileOptions): number {
  const fd = openInput(path, options);
  try {
    return checkOpened(fd, path, options);
  } finally {
    closeSync(fd);
  }
}

/** Opens without blocking; a missing or unreadable file is the caller's coded error (ENOENT in `details.errno`). */
function openInput(path: string, options: InputFileOptions): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    const reason = errno === 'ENOENT' ? 'does not exist' : (error as Error).message;
    throw new BatonError(options.code, `${options.what} ${path} ${reason}`, {
      cause: error,
      ...(errno ? { details: { errno } } : {}),
    });
  }
}

/** Refuses what is not a regular file, or is over the limit; returns the size. */
function checkOpened(fd: number, path: string, options: InputFileOptions): number {
  const st = fstatSync(fd);
  if (!st.isFile()) {
    const kind = st.isDirectory()
      ? 'a folder'
      : st.isFIFO()
        ? 'a named pipe'
        : st.isCharacterDevice() || st.isBlockDevice()
          ? 'a device'
          : st.isSocket()
            ? 'a socket'
            : 'not a regular file';
    throw new BatonError(options.code, `${options.what} ${path} is ${kind}, not a regular file`, {
      hint: `Give the path of a regular ${options.what}.`,
      details: { kind },
    });
  }
  const limit = options.limitBytes ?? LIMITS[options.limit].default;
  if (st.size > limit) {
    throw limitExceeded(options.limit, st.size, `${options.what} ${path}`, { code: options.code, limit });
  }
  return st.size;
}
