/**
 * Data paths: `data://<mount>/<key>`, the one way flows, the CLI and task code name data.
 * A key is relative to its mount and can never leave it: parsing refuses `.` and `..`
 * segments, percent-encoded dots, slashes and backslashes (which some stores or servers
 * would decode into one), an absolute key, a backslash and control characters. Symbolic
 * links are refused by the mounts that have them (local folders), when they are met.
 */
import { BatonError } from './errors.js';

/** A parsed data path. `key` is `''` for the mount's root; it never starts or ends with `/`. */
export interface DataPath {
  readonly mount: string;
  readonly key: string;
}

/** The scheme every data path starts with. */
export const DATA_SCHEME = 'data://';

/** A mount name: a letter, then letters, digits, `_` or `-`; at most 63 characters. */
export const MOUNT_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/** Longest key, in UTF-8 bytes: what S3 allows, and more than any local file system needs. */
export const KEY_BYTES_MOST = 1024;

/** `%2e`, `%2f` and `%5c` in any case: a dot, a slash or a backslash some layer would decode. */
const ENCODED_SEPARATOR = /%(2e|2f|5c)/i;

// Control characters (C0, DEL, C1) are never part of a key: they hide in logs and terminals.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Parses a data path. `where` names the input in errors ("--to", "tasks.load.with.path").
 * Example: `parseDataPath('data://raw/orders/2024-01-01.csv')` →
 * `{ mount: 'raw', key: 'orders/2024-01-01.csv' }`; `data://raw/` and `data://raw` name
 * the mount's root (key `''`).
 */
export function parseDataPath(text: string, where?: string): DataPath {
  const at = where ? ` (${where})` : '';
  if (typeof text !== 'string' || !text.startsWith(DATA_SCHEME)) {
    throw invalid(`${quote(text)}${at} is not a data path: it must start with ${DATA_SCHEME}`);
  }
  const rest = text.slice(DATA_SCHEME.length);
  const slash = rest.indexOf('/');
  const mount = slash < 0 ? rest : rest.slice(0, slash);
  if (!MOUNT_NAME.test(mount)) {
    throw invalid(
      `${quote(text)}${at}: ${mount === '' ? 'the mount name is missing' : `${quote(mount)} is not a mount name`}`,
      'A mount name starts with a letter and has only letters, digits, `_` and `-`: `data://raw/orders.csv`.',
    );
  }
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  return { mount, key: checkKey(key, text, at) };
}

/**
 * Checks a key relative to a mount (as `parseDataPath` does for the part after the mount)
 * and returns it without a trailing `/`.
 */
export function checkKey(key: string, text: string = key, at = ''): string {
  if (key.startsWith('/')) {
    throw escape(`${quote(text)}${at}: the key is absolute (it starts with /); keys are relative to their mount`);
  }
  if (CONTROL.test(key)) throw invalid(`${quote(text)}${at}: the key holds a control character`);
  if (key.includes('\\')) {
    throw invalid(`${quote(text)}${at}: the key holds a backslash; separate folders with /`);
  }
  if (ENCODED_SEPARATOR.test(key)) {
    throw escape(`${quote(text)}${at}: the key holds a percent-encoded dot, slash or backslash`);
  }
  const trimmed = key.endsWith('/') ? key.slice(0, -1) : key;
  if (trimmed === '') return '';
  if (Buffer.byteLength(trimmed) > KEY_BYTES_MOST) {
    throw invalid(`${quote(text.slice(0, 80))}…${at}: the key is over ${KEY_BYTES_MOST} bytes`);
  }
  for (const segment of trimmed.split('/')) {
    if (segment === '.' || segment === '..') {
      throw escape(`${quote(text)}${at}: the key holds a ${quote(segment)} segment`);
    }
    if (segment === '') throw invalid(`${quote(text)}${at}: the key holds an empty segment (//)`);
  }
  return trimmed;
}

/** The text of a data path. */
export function formatDataPath(path: DataPath): string {
  return `${DATA_SCHEME}${path.mount}/${path.key}`;
}

/** Whether a value is meant as a data path (it starts with the scheme). */
export function isDataPath(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(DATA_SCHEME);
}

/** The key's parent folder (`''` at the root), and its last segment. */
export function splitKey(key: string): { readonly folder: string; readonly name: string } {
  const i = key.lastIndexOf('/');
  return i < 0 ? { folder: '', name: key } : { folder: key.slice(0, i), name: key.slice(i + 1) };
}

function quote(text: unknown): string {
  return JSON.stringify(String(text));
}

function invalid(message: string, hint?: string): BatonError {
  return new BatonError('DATA_PATH_INVALID', message, hint ? { hint } : {});
}

function escape(message: string): BatonError {
  return new BatonError('DATA_PATH_ESCAPE', message);
}
