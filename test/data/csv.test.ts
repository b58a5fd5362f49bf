import { describe, expect, it } from 'vitest';
import { CsvReader, CsvSyntaxError, formatCsvRecord } from '../../src/data/csv.js';
import type { CsvRecord } from '../../src/data/csv.js';

/** Reads `text` fed in pieces of `size` characters. */
function read(text: string, size = text.length || 1): CsvRecord[] {
  const reader = new CsvReader();
  const out: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += size) out.push(...reader.push(text.slice(i, i + size)));
  out.push(...reader.end());
  return out;
}

function syntaxError(text: string): CsvSyntaxError {
  try {
    read(text);
  } catch (error) {
    if (error instanceof CsvSyntaxError) return error;
    throw error;
  }
  throw new Error('expected a CsvSyntaxError');
}

describe('CSV reader', () => {
  const text = 'a,b,c\r\n1,"x, ""y""",\r\n2,"two\r\nlines",""\n3,plain,z';

  it('reads quoted fields, doubled quotes, line breaks inside quotes, CRLF and LF', () => {
    expect(read(text)).toEqual([
      { fields: ['a', 'b', 'c'], line: 1 },
      { fields: ['1', 'x, "y"', null], line: 2 },
      { fields: ['2', 'two\r\nlines', ''], line: 3 },
      { fields: ['3', 'plain', 'z'], line: 5 },
    ]);
  });

  it('gives the same records whatever the pieces the text arrives in', () => {
    for (const size of [1, 2, 3, 5, 8]) expect(read(text, size), `pieces of ${size}`).toEqual(read(text));
  });

  it('skips blank lines and adds no record for a trailing line break', () => {
    expect(read('a\r\n\r\nb\n\n').map((r) => [r.fields, r.line])).toEqual([
      [['a'], 1],
      [['b'], 3],
    ]);
  });

  it('tells an unquoted empty field (null) from a quoted one (the empty string)', () => {
    expect(read(',"",x\n')[0]?.fields).toEqual([null, '', 'x']);
  });

  it('names the line of a malformed record', () => {
    expect(syntaxError('a\nb"c\n')).toMatchObject({
      line: 2,
      reason: 'a quote inside a field that does not start with one',
    });
    expect(syntaxError('a\n"b"c\n')).toMatchObject({ line: 2, reason: 'text after the closing quote of a field' });
    expect(syntaxError('a\nb\n"c\nd')).toMatchObject({ line: 3, reason: 'a quoted field is never closed' });
  });
});

describe('CSV writer', () => {
  it('quotes only what needs quotes, and writes null as nothing and the empty string as ""', () => {
    expect(formatCsvRecord(['a', 'b,c', 'say "hi"', 'two\nlines', null, '', ' padded '])).toBe(
      'a,"b,c","say ""hi""","two\nlines",,"", padded \r\n',
    );
  });

  it('writes what the reader reads back', () => {
    const records: (string | null)[][] = [
      ['id', 'text'],
      ['1', '"quoted", and\r\nbroken'],
      ['2', null],
      ['3', ''],
    ];
    expect(read(records.map(formatCsvRecord).join('')).map((r) => r.fields)).toEqual(records);
  });
});
