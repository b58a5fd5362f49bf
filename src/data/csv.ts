/**
 * CSV as RFC 4180 writes it: fields separated by `,`, records by CRLF (LF accepted on
 * input), a field holding `,`, `"`, CR or LF quoted with `"` and its quotes doubled.
 *
 * One convention on top, the one PostgreSQL's COPY uses, so that NULL survives a round
 * trip: an empty field written without quotes is null, `""` is the empty string. A line
 * with nothing on it is no record (a trailing newline adds none).
 *
 * The reader is incremental: text arrives in pieces of any size (a quoted field may span
 * pieces and lines), so a large file is never held whole.
 */

/** One field of a record read: null for an unquoted empty field. */
export type CsvField = string | null;

/** A record read, with the line (1-based) it starts on, for error messages. */
export interface CsvRecord {
  readonly fields: CsvField[];
  readonly line: number;
}

/** What is wrong with the text, and on which line; the caller turns it into its own error. */
export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'CsvSyntaxError';
  }
}

/** Where the reader is. */
const At = {
  /** At the start of a field. */
  FieldStart: 0,
  /** Inside a field without quotes. */
  Unquoted: 1,
  /** Inside a quoted field. */
  Quoted: 2,
  /** Just after a `"` in a quoted field: either its end or the first of a doubled quote. */
  QuoteInQuoted: 3,
} as const;
type At = (typeof At)[keyof typeof At];

/** Reads CSV text fed in pieces; `push` and `end` return the records completed so far. */
export class CsvReader {
  private state: At = At.FieldStart;
  private field = '';
  private quoted = false;
  private fields: CsvField[] = [];
  private line = 1;
  private recordLine = 1;
  /** A CR was the last character seen: an LF right after it belongs to the same line end. */
  private pendingCr = false;
  /** The same, inside a quoted field, whose text may end one piece and go on in the next. */
  private quotedCr = false;

  /** Feeds the next piece of text. */
  push(text: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      if (this.pendingCr) {
        this.pendingCr = false;
        if (c === '\n') continue;
      }
      switch (this.state) {
        case At.FieldStart:
          if (c === '"') {
            this.state = At.Quoted;
            this.quoted = true;
          } else if (c === ',') {
            this.endField();
          } else if (c === '\r' || c === '\n') {
            this.endRecord(out);
            this.newLine(c);
          } else {
            this.field += c;
            this.state = At.Unquoted;
          }
          break;
        case At.Unquoted:
          if (c === ',') {
            this.endField();
            this.state = At.FieldStart;
          } else if (c === '\r' || c === '\n') {
            this.endRecord(out);
            this.newLine(c);
            this.state = At.FieldStart;
          } else if (c === '"') {
            throw new CsvSyntaxError(this.line, 'a quote inside a field that does not start with one');
          } else {
            // Runs of plain characters are copied at once: per-character concatenation
            // would dominate the cost of a large file.
            let j = i + 1;
            while (j < text.length && !isSpecial(text.charCodeAt(j))) j++;
            this.field += text.slice(i, j);
            i = j - 1;
          }
          break;
        case At.Quoted:
          if (c === '"') {
            this.state = At.QuoteInQuoted;
            this.quotedCr = false;
          } else {
            let j = i + 1;
            while (j < text.length && text.charCodeAt(j) !== 34) j++;
            const part = text.slice(i, j);
            this.countLines(part);
            this.field += part;
            i = j - 1;
          }
          break;
        case At.QuoteInQuoted:
          if (c === '"') {
            this.field += '"';
            this.state = At.Quoted;
          } else if (c === ',') {
            this.endField();
            this.state = At.FieldStart;
          } else if (c === '\r' || c === '\n') {
            this.endRecord(out);
            this.newLine(c);
            this.state = At.FieldStart;
          } else {
            throw new CsvSyntaxError(this.line, 'text after the closing quote of a field');
          }
          break;
      }
    }
    return out;
  }

  /** Ends the text; throws when a quoted field is left open. */
  end(): CsvRecord[] {
    if (this.state === At.Quoted) throw new CsvSyntaxError(this.recordLine, 'a quoted field is never closed');
    const out: CsvRecord[] = [];
    this.endRecord(out);
    return out;
  }

  /** Counts the line ends in text of a quoted field (CRLF once). */
  private countLines(part: string): void {
    for (let k = 0; k < part.length; k++) {
      const c = part.charCodeAt(k);
      const afterCr = k === 0 ? this.quotedCr : part.charCodeAt(k - 1) === 13;
      if (c === 13 || (c === 10 && !afterCr)) this.line++;
    }
    this.quotedCr = part.charCodeAt(part.length - 1) === 13;
  }

  private endField(): void {
    this.fields.push(this.field === '' && !this.quoted ? null : this.field);
    this.field = '';
    this.quoted = false;
  }

  private endRecord(out: CsvRecord[]): void {
    const blank = this.fields.length === 0 && this.field === '' && !this.quoted;
    if (!blank) {
      this.endField();
      out.push({ fields: this.fields, line: this.recordLine });
    }
    this.fields = [];
    this.field = '';
    this.quoted = false;
  }

  private newLine(c: string): void {
    this.line++;
    this.recordLine = this.line;
    this.pendingCr = c === '\r';
  }
}

function isSpecial(code: number): boolean {
  return code === 44 || code === 34 || code === 13 || code === 10;
}

const NEEDS_QUOTES = /[",\r\n]/;

/** One field as CSV text: null as nothing, the empty string as `""`. */
export function formatCsvField(value: string | null): string {
  if (value === null) return '';
  if (value === '' || NEEDS_QUOTES.test(value)) return `"${value.replace(/"/g, '""')}"`;
  return value;
}

/** One record as a CSV line, CRLF included. Example: `formatCsvRecord(['a', 'b,c', null])` → `a,"b,c",\r\n`. */
export function formatCsvRecord(values: readonly (string | null)[]): string {
  return `${values.map(formatCsvField).join(',')}\r\n`;
}
