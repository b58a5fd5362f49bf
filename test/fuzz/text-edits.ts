/**
 * Byte-level fuzz of document text: edits that a structured mutation cannot make (bytes
 * that are not UTF-8, a cut, a BOM, CRLF, tabs in indentation, a second document, a
 * directive), and YAML token soup that gets past the first byte of a parser.
 */
import fc from 'fast-check';

export type TextEdit =
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly length: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'dup-line'; readonly at: number }
  | { readonly op: 'indent'; readonly at: number; readonly by: string }
  | { readonly op: 'crlf' }
  | { readonly op: 'bom' }
  | { readonly op: 'prefix'; readonly text: string }
  | { readonly op: 'suffix'; readonly text: string };

export function textEditArb(): fc.Arbitrary<TextEdit> {
  const at = fc.nat();
  return fc.oneof(
    fc.record({ op: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ op: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ op: fc.constant('truncate' as const), at }),
    fc.record({ op: fc.constant('dup-line' as const), at }),
    fc.record({ op: fc.constant('indent' as const), at, by: fc.constantFrom(' ', '\t', '   ', '\u00a0') }),
    fc.constant({ op: 'crlf' as const }),
    fc.constant({ op: 'bom' as const }),
    fc.record({
      op: fc.constant('prefix' as const),
      text: fc.constantFrom(
        '%YAML 1.1\n---\n',
        '%YAML 9.9\n---\n',
        '--- !!set\n',
        '&top ',
        '? ',
        '\u0000',
        '#!/bin/sh\n',
      ),
    }),
    fc.record({
      op: fc.constant('suffix' as const),
      text: fc.constantFrom(
        '\n---\nname: second\ntasks: {}\n',
        '\n...\n',
        '\n<<: *nowhere\n',
        '\n\u0000',
        '\n  - stray\n',
        '\nname: again\n',
      ),
    }),
  );
}

function describeEdit(e: TextEdit): string {
  switch (e.op) {
    case 'insert':
      return `insert bytes ${Buffer.from(e.bytes).toString('hex')} at ${e.at}`;
    case 'delete':
      return `delete ${e.length} bytes at ${e.at}`;
    case 'truncate':
      return `truncate at ${e.at}`;
    case 'dup-line':
      return `duplicate line ${e.at}`;
    case 'indent':
      return `indent line ${e.at} by ${JSON.stringify(e.by)}`;
    case 'prefix':
    case 'suffix':
      return `${e.op} ${JSON.stringify(e.text)}`;
    default:
      return e.op;
  }
}

/** Applies byte edits to a text; positions are taken modulo the current length. */
export function editText(text: string, edits: readonly TextEdit[]): { bytes: Buffer; labels: string[] } {
  let bytes = Buffer.from(text, 'utf8');
  const labels: string[] = [];
  for (const e of edits) {
    const pos = (n: number) => (bytes.length === 0 ? 0 : n % (bytes.length + 1));
    const lines = () => bytes.toString('latin1').split('\n');
    switch (e.op) {
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, pos(e.at)), e.bytes, bytes.subarray(pos(e.at))]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, pos(e.at)), bytes.subarray(pos(e.at) + e.length)]);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, pos(e.at));
        break;
      case 'dup-line': {
        const ls = lines();
        const i = e.at % ls.length;
        ls.splice(i, 0, ls[i] ?? '');
        bytes = Buffer.from(ls.join('\n'), 'latin1');
        break;
      }
      case 'indent': {
        const ls = lines();
        const i = e.at % ls.length;
        ls[i] = Buffer.from(e.by, 'utf8').toString('latin1') + (ls[i] ?? '');
        bytes = Buffer.from(ls.join('\n'), 'latin1');
        break;
      }
      case 'crlf':
        bytes = Buffer.from(bytes.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
        break;
      case 'bom':
        bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
        break;
      case 'prefix':
        bytes = Buffer.concat([Buffer.from(e.text, 'utf8'), bytes]);
        break;
      case 'suffix':
        bytes = Buffer.concat([bytes, Buffer.from(e.text, 'utf8')]);
        break;
    }
    labels.push(describeEdit(e));
  }
  return { bytes, labels };
}

/** Tokens of YAML and JSON syntax, for garbage that gets past the first byte of the parser. */
const TOKENS = [
  '[',
  ']',
  '{',
  '}',
  ':',
  ': ',
  '- ',
  ',',
  '&a ',
  '*a',
  '!!',
  '!x ',
  '\n',
  '  ',
  '"',
  "'",
  '#',
  '|',
  '>',
  '? ',
  '---',
  '...',
  '%YAML 1.2',
  '<<: ',
  'name',
  'tasks',
  'kind',
  'shell',
  '\t',
  '\\',
  '\u0000',
  '😀',
  '1e400',
  '~',
];

export function tokenSoupArb(): fc.Arbitrary<string> {
  return fc.array(fc.constantFrom(...TOKENS), { maxLength: 600 }).map((t) => t.join(''));
}
