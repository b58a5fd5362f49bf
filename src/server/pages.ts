/**
 * Pages of lists: `limit` items from an opaque cursor. A cursor is the offset of the page's
 * first item, encoded so that clients treat it as opaque.
 */
import { BatonError } from '../core/errors.js';
import type { Page } from './schemas.js';

/** The offset a cursor stands for (0 without one); REQUEST_INVALID for a cursor not made here. */
export function cursorOffset(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^o:(\d{1,9})$/.exec(text);
  if (!match) {
    throw new BatonError('REQUEST_INVALID', 'cursor: not a cursor of this API', {
      hint: 'Pass the `next_cursor` of the previous page as it is.',
    });
  }
  return Number(match[1]);
}

/** The cursor of the page starting at `offset`. */
export function offsetCursor(offset: number): string {
  return Buffer.from(`o:${offset}`, 'utf8').toString('base64url');
}

/**
 * The page of `items` (the list from its start, with at least one item past the page when
 * there is a next one) starting at `offset`.
 */
export function pageOf<T>(items: readonly T[], offset: number, limit: number): Page<T> {
  const slice = items.slice(offset, offset + limit);
  return { items: slice, next_cursor: items.length > offset + limit ? offsetCursor(offset + limit) : null };
}
