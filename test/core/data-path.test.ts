import { describe, expect, it } from 'vitest';
import { formatDataPath, parseDataPath } from '../../src/core/data-path.js';
import { formatByteSize, parseByteSize } from '../../src/core/byte-size.js';
import { thrown } from '../helpers/thrown.js';

describe('data paths', () => {
  it('parses a mount and a key, and the root of a mount', () => {
    expect(parseDataPath('data://raw/orders/2024-01-01.csv')).toEqual({ mount: 'raw', key: 'orders/2024-01-01.csv' });
    expect(parseDataPath('data://raw/')).toEqual({ mount: 'raw', key: '' });
    expect(parseDataPath('data://raw')).toEqual({ mount: 'raw', key: '' });
    expect(parseDataPath('data://raw/orders/')).toEqual({ mount: 'raw', key: 'orders' });
    expect(formatDataPath({ mount: 'raw', key: 'a/b.csv' })).toBe('data://raw/a/b.csv');
  });

  it('keeps other percent signs, spaces and unicode as they are', () => {
    expect(parseDataPath('data://raw/100% sure/é.csv').key).toBe('100% sure/é.csv');
  });

  it.each([
    ['data://raw/../etc/passwd', '".." segment'],
    ['data://raw/a/../../b', '".." segment'],
    ['data://raw/./a', '"." segment'],
    ['data://raw/%2e%2e/secret', 'percent-encoded'],
    ['data://raw/%2E./secret', 'percent-encoded'],
    ['data://raw/a%2fb', 'percent-encoded'],
    ['data://raw/a%5C..%5Cb', 'percent-encoded'],
    ['data://raw//etc/passwd', 'absolute'],
  ])('refuses %s as an escape from its mount', (path, why) => {
    const error = thrown(() => parseDataPath(path, 'with.path'));
    expect(error.code).toBe('DATA_PATH_ESCAPE');
    expect(error.message).toContain(why);
    expect(error.message).toContain('(with.path)');
  });

  it.each([
    ['/etc/passwd', 'must start with data://'],
    ['s3://bucket/key', 'must start with data://'],
    ['data:///key', 'mount name is missing'],
    ['data://9raw/key', 'is not a mount name'],
    ['data://raw/a//b', 'empty segment'],
    ['data://raw/a\\b', 'backslash'],
    ['data://raw/a\u0000b', 'control character'],
    [`data://raw/${'x'.repeat(1100)}`, 'over 1024 bytes'],
  ])('refuses the malformed path %s', (path, why) => {
    const error = thrown(() => parseDataPath(path));
    expect(error.code).toBe('DATA_PATH_INVALID');
    expect(error.message).toContain(why);
  });
});

describe('byte sizes', () => {
  it('reads bytes and units of both bases', () => {
    expect(parseByteSize(4096)).toBe(4096);
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('10GiB')).toBe(10 * 1024 ** 3);
    expect(parseByteSize('10 GB')).toBe(10e9);
    expect(parseByteSize('1.5MiB')).toBe(1572864);
    expect(parseByteSize('500kb')).toBe(500_000);
  });

  it('refuses what is no size', () => {
    for (const bad of ['', 'ten', '10 parsecs', '-1', -1, 1.5, '1e9', null]) expect(parseByteSize(bad)).toBeUndefined();
  });

  it('prints sizes for people', () => {
    expect(formatByteSize(300)).toBe('300 B');
    expect(formatByteSize(1536)).toBe('1.5 KiB');
    expect(formatByteSize(200 * 1024 ** 2)).toBe('200 MiB');
  });
});
