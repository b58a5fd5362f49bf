/**
 * Sizes in configuration: a whole number of bytes, or a number with a unit. Units are
 * explicit about their base: `KB`, `MB`, `GB`, `TB` are powers of 1000 and `KiB`, `MiB`,
 * `GiB`, `TiB` powers of 1024, so that `10GB` and `10GiB` mean what they say.
 */

const UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const SIZE = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/;

/** The forms a size may take, for messages. */
export const BYTE_SIZE_FORMS =
  'a whole number of bytes, or a number with a unit: 500MB, 10GiB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)';

/**
 * Bytes in a size, or undefined when it is none of the forms above.
 * Example: `parseByteSize('1.5GiB')` → 1610612736; `parseByteSize(4096)` → 4096.
 */
export function parseByteSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = SIZE.exec(value.trim());
  if (!match) return undefined;
  const unit = UNITS[(match[2] ?? '').toLowerCase() || 'b'];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A size for people: `1.5 GiB`, `12 KiB`, `300 B`. */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[i]}`;
}
