/**
 * The `${{ }}` expression language of task inputs: a tokenizer, a Pratt parser to a small
 * AST, and an evaluator over a scope of named roots (`params`, `tasks`, `run`, …).
 *
 * Invariants this module keeps:
 * - An expression only reads data. There are no calls, assignments or constructors, and
 *   nothing is ever handed to `eval`/`Function`.
 * - Reads go through own properties of plain objects and arrays (indices and `length`)
 *   only, and `__proto__`, `constructor` and `prototype` are refused (at parse time when
 *   written, at evaluation time when computed), so a template cannot reach JavaScript
 *   internals through the data it is given.
 * - Reading what is not there is an error naming the path, never a silent `undefined`,
 *   except along the left of `??`, which exists to provide the fallback.
 * - Compiled templates are memoized by text (bounded) because one `with` is rendered for
 *   every task run; a compiled form holds no scope, so sharing it cannot leak values.
 *
 * Member names after a dot may contain inner hyphens (`tasks.load-data.output`) because
 * task ids do; subtraction therefore needs spaces after a member name (`a.n - 1`).
 */
import { BatonError } from '../core/errors.js';
import { suggest } from './suggest.js';

/** The static prefix of a member chain: `tasks.extract.output.rows` → `tasks`, `[extract, output, rows]`. */
export interface Reference {
  readonly root: string;
  readonly path: readonly (string | number)[];
}

export interface TemplateProblem {
  readonly message: string;
  /** Where the bad string sits inside the value that was walked, e.g. `['rows', 0]`. */
  readonly path: readonly (string | number)[];
  readonly code: 'DEF_EXPRESSION';
}

export type BinaryOperator = '??' | '||' | '&&' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '+' | '-' | '*' | '/' | '%';

/** Offsets into the text the expression was parsed from; `paren` when written in parentheses. */
interface Span {
  readonly start: number;
  readonly end: number;
  readonly paren?: boolean;
}

export type Expr =
  | (Span & { readonly kind: 'literal'; readonly value: string | number | boolean | null })
  | (Span & { readonly kind: 'root'; readonly name: string })
  /** `a.b`, `a["b"]`, `a[0]`: the key is known without evaluating anything. */
  | (Span & { readonly kind: 'member'; readonly object: Expr; readonly key: string | number })
  /** `a[expr]` with a computed key. */
  | (Span & { readonly kind: 'index'; readonly object: Expr; readonly index: Expr })
  | (Span & { readonly kind: 'unary'; readonly op: '!' | '-'; readonly operand: Expr })
  | (Span & { readonly kind: 'binary'; readonly op: BinaryOperator; readonly left: Expr; readonly right: Expr })
  | (Span & { readonly kind: 'conditional'; readonly test: Expr; readonly consequent: Expr; readonly alternate: Expr });

export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  /** `source` is the `${{ … }}` as written; `expr` offsets index the whole template text. */
  | { readonly kind: 'expression'; readonly source: string; readonly expr: Expr };

export interface CompiledTemplate {
  readonly text: string;
  readonly parts: readonly TemplatePart[];
  /** The text is exactly one `${{ }}`: rendering yields the value itself, not a string. */
  readonly raw: boolean;
  readonly references: readonly Reference[];
}

const FORBIDDEN_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const KEYWORDS: ReadonlyMap<string, boolean | null> = new Map([
  ['true', true],
  ['false', false],
  ['null', null],
]);
const CACHE_LIMIT = 10_000;
/** Bounds on one expression, so hostile input cannot exhaust the stack. */
const MAX_DEPTH = 64;
const MAX_NODES = 1_000;
/** Long texts are clipped in messages; `details` keeps the full text. */
const MAX_LABEL = 200;

// ---------------------------------------------------------------------------------------
// Tokenizer

type Token =
  | { readonly kind: 'number'; readonly value: number; readonly start: number; readonly end: number }
  | { readonly kind: 'string'; readonly value: string; readonly start: number; readonly end: number }
  | { readonly kind: 'name'; readonly value: string; readonly start: number; readonly end: number }
  | { readonly kind: 'op'; readonly value: string; readonly start: number; readonly end: number }
  | { readonly kind: 'end'; readonly value: ''; readonly start: number; readonly end: number };

/** Longest first, so that `??` wins over `?`. `}}` closes a template. */
const OPERATORS = [
  '??',
  '==',
  '!=',
  '<=',
  '>=',
  '&&',
  '||',
  '}}',
  '.',
  '[',
  ']',
  '(',
  ')',
  '?',
  ':',
  '!',
  '-',
  '+',
  '*',
  '/',
  '%',
  '<',
  '>',
];
// Looked up by length (two characters first), as often as every token of every template.
const TWO_CHAR_OPERATORS: ReadonlySet<string> = new Set(OPERATORS.filter((op) => op.length === 2));
const ONE_CHAR_OPERATORS: ReadonlySet<string> = new Set(OPERATORS.filter((op) => op.length === 1));

/** What `/\s/` matches, without a one-character string per character of a template. */
function isSpace(code: number): boolean {
  if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) return true;
  return code > 0x7f && /\s/.test(String.fromCharCode(code));
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const MEMBER_NAME = /[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*/y;
const NUMBER = /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const NAME_CHAR = /[A-Za-z0-9_]/;
const UNICODE_BRACED = /\{([0-9a-fA-F]{1,6})\}/y;
const UNICODE_FOUR = /[0-9a-fA-F]{4}/y;
const STRING_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  t: '\t',
  r: '\r',
  b: '\b',
  f: '\f',
  v: '\v',
  '0': '\0',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '/': '/',
};

type Fail = (offset: number, message: string) => never;

/** Produces tokens on demand, so a template's literal text after `}}` is never tokenized. */
class Lexer {
  private pos: number;
  private afterDot = false;

  constructor(
    private readonly text: string,
    start: number,
    private readonly fail: Fail,
  ) {
    this.pos = start;
  }

  next(): Token {
    const token = this.read();
    this.afterDot = token.kind === 'op' && token.value === '.';
    return token;
  }

  private read(): Token {
    const text = this.text;
    while (this.pos < text.length && isSpace(text.charCodeAt(this.pos))) this.pos++;
    const start = this.pos;
    const char = text[start];
    if (char === undefined) return { kind: 'end', value: '', start, end: start };
    if (char >= '0' && char <= '9') {
      const digits = this.match(NUMBER) as string;
      if (NAME_CHAR.test(text[this.pos] ?? ''))
        this.fail(this.pos, `unexpected ${quote(text[this.pos] ?? '')} after the number ${digits}`);
      const value = Number(digits);
      if (!Number.isFinite(value)) this.fail(start, `the number ${digits} is too large`);
      return { kind: 'number', value, start, end: this.pos };
    }
    if (char === '"' || char === "'") return this.readString(char);
    const name = this.match(this.afterDot ? MEMBER_NAME : NAME);
    if (name !== undefined) return { kind: 'name', value: name, start, end: this.pos };
    if (text.startsWith('===', start) || text.startsWith('!==', start)) {
      this.fail(start, `write ${quote(char + '=')}: it already compares without converting types`);
    }
    const pair = text.slice(start, start + 2);
    const op = TWO_CHAR_OPERATORS.has(pair) ? pair : ONE_CHAR_OPERATORS.has(char) ? char : undefined;
    if (op !== undefined) {
      this.pos += op.length;
      return { kind: 'op', value: op, start, end: this.pos };
    }
    if (char === '=') this.fail(start, 'assignment is not supported; write "==" to compare');
    if (char === '&' || char === '|') this.fail(start, `unexpected ${quote(char)}; write ${quote(char + char)}`);
    return this.fail(start, `unexpected character ${quote(char)}`);
  }

  private match(pattern: RegExp): string | undefined {
    pattern.lastIndex = this.pos;
    const found = pattern.exec(this.text)?.[0];
    if (found !== undefined) this.pos += found.length;
    return found;
  }

  private readString(delimiter: string): Token {
    const start = this.pos;
    let value = '';
    let i = start + 1;
    for (;;) {
      const char = this.text[i];
      if (char === undefined) return this.fail(start, `unterminated string: expected a closing ${delimiter}`);
      if (char === delimiter) break;
      if (char !== '\\') {
        value += char;
        i++;
        continue;
      }
      const escape = this.text[i + 1] ?? '';
      if (escape === 'u') {
        const pattern = this.text[i + 2] === '{' ? UNICODE_BRACED : UNICODE_FOUR;
        pattern.lastIndex = i + 2;
        const hex = pattern.exec(this.text);
        const code = hex ? parseInt(hex[1] ?? hex[0], 16) : NaN;
        if (!hex || code > 0x10ffff) this.fail(i, 'expected \\uXXXX or \\u{X…} with a valid code point');
        value += String.fromCodePoint(code);
        i += 2 + hex[0].length;
        continue;
      }
      const replacement = STRING_ESCAPES[escape];
      if (replacement === undefined) this.fail(i, `unknown escape \\${escape} in a string`);
      value += replacement;
      i += 2;
    }
    this.pos = i + 1;
    return { kind: 'string', value, start, end: this.pos };
  }
}

// ---------------------------------------------------------------------------------------
// Parser

const PRECEDENCE: Readonly<Record<BinaryOperator, number>> = {
  '??': 2,
  '||': 3,
  '&&': 4,
  '==': 5,
  '!=': 5,
  '<': 6,
  '<=': 6,
  '>': 6,
  '>=': 6,
  '+': 7,
  '-': 7,
  '*': 8,
  '/': 8,
  '%': 8,
};
const TERNARY_PRECEDENCE = 1;

function isBinaryOperator(value: string): value is BinaryOperator {
  return Object.hasOwn(PRECEDENCE, value);
}

type ExprOf<K extends Expr['kind']> = Extract<Expr, { kind: K }>;

class Parser {
  private token: Token;
  private depth = 0;
  private nodes = 0;

  constructor(
    private readonly lexer: Lexer,
    private readonly fail: Fail,
    /** What the input ends with: `}}` in a template, the end of the text otherwise. */
    private readonly closing: string,
  ) {
    this.token = lexer.next();
  }

  get current(): Token {
    return this.token;
  }

  /** `minPrecedence` binds operators at least that tight: the Pratt loop. */
  parseExpression(minPrecedence = 0): Expr {
    this.enter();
    let left = this.parseUnary();
    for (;;) {
      const token = this.token;
      if (token.kind !== 'op') break;
      if (token.value === '?') {
        if (TERNARY_PRECEDENCE < minPrecedence) break;
        this.advance();
        const consequent = this.parseExpression();
        this.expect(':', 'to separate the branches of "?"');
        const alternate = this.parseExpression(TERNARY_PRECEDENCE);
        left = this.node({
          kind: 'conditional',
          test: left,
          consequent,
          alternate,
          start: left.start,
          end: alternate.end,
        });
        continue;
      }
      if (!isBinaryOperator(token.value)) break;
      const op = token.value;
      const precedence = PRECEDENCE[op];
      if (precedence < minPrecedence) break;
      this.advance();
      const right = this.parseExpression(precedence + 1);
      if (op === '??') {
        // JavaScript refuses `a || b ?? c` for the same reason: the reader cannot tell which binds first.
        for (const side of [left, right]) {
          if (side.kind === 'binary' && (side.op === '&&' || side.op === '||') && !side.paren) {
            this.fail(side.start, `wrap ${quote(side.op)} in parentheses when it is mixed with "??"`);
          }
        }
      }
      left = this.node({ kind: 'binary', op, left, right, start: left.start, end: right.end });
    }
    this.depth--;
    return left;
  }

  private parseUnary(): Expr {
    const token = this.token;
    if (token.kind === 'op' && (token.value === '!' || token.value === '-')) {
      this.enter();
      this.advance();
      const operand = this.parseUnary();
      this.depth--;
      return this.node({ kind: 'unary', op: token.value, operand, start: token.start, end: operand.end });
    }
    return this.parsePostfix(this.parsePrimary());
  }

  private parsePrimary(): Expr {
    const token = this.token;
    switch (token.kind) {
      case 'number':
      case 'string':
        this.advance();
        return this.node({ kind: 'literal', value: token.value, start: token.start, end: token.end });
      case 'name': {
        this.advance();
        const keyword = KEYWORDS.get(token.value);
        if (keyword !== undefined)
          return this.node({ kind: 'literal', value: keyword, start: token.start, end: token.end });
        this.refuseForbidden(token.value, token.start);
        return this.node({ kind: 'root', name: token.value, start: token.start, end: token.end });
      }
      case 'op':
        if (token.value === '(') {
          this.advance();
          const inner = this.parseExpression();
          const close = this.expect(')', 'to close "("');
          return { ...inner, start: token.start, end: close.end, paren: true };
        }
        break;
      case 'end':
        break;
    }
    return this.fail(token.start, `expected an expression, found ${describeToken(token, this.closing)}`);
  }

  private parsePostfix(object: Expr): Expr {
    for (;;) {
      const token = this.token;
      if (token.kind !== 'op') return object;
      if (token.value === '.') {
        this.advance();
        const name = this.token;
        if (name.kind !== 'name') {
          const hint = name.kind === 'number' ? '; write [0] to index an array' : '';
          this.fail(
            name.start,
            `expected a property name after ".", found ${describeToken(name, this.closing)}${hint}`,
          );
        }
        this.refuseForbidden(name.value, name.start);
        this.advance();
        object = this.node({ kind: 'member', object, key: name.value, start: object.start, end: name.end });
      } else if (token.value === '[') {
        this.advance();
        const index = this.parseExpression();
        const close = this.expect(']', 'to close "["');
        if (index.kind === 'literal' && (typeof index.value === 'string' || typeof index.value === 'number')) {
          if (typeof index.value === 'string') this.refuseForbidden(index.value, index.start);
          object = this.node({ kind: 'member', object, key: index.value, start: object.start, end: close.end });
        } else {
          object = this.node({ kind: 'index', object, index, start: object.start, end: close.end });
        }
      } else if (token.value === '(') {
        return this.fail(token.start, 'function calls are not supported');
      } else {
        return object;
      }
    }
  }

  private refuseForbidden(name: string, offset: number): void {
    if (FORBIDDEN_NAMES.has(name)) this.fail(offset, `${quote(name)} cannot be read in expressions`);
  }

  private expect(op: string, why: string): Token {
    const token = this.token;
    if (token.kind !== 'op' || token.value !== op) {
      this.fail(token.start, `expected ${quote(op)} ${why}, found ${describeToken(token, this.closing)}`);
    }
    return this.advance();
  }

  private advance(): Token {
    const token = this.token;
    this.token = this.lexer.next();
    return token;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail(this.token.start, `the expression nests deeper than ${MAX_DEPTH} levels`);
  }

  private node<E extends Expr>(expr: E): E {
    if (++this.nodes > MAX_NODES) this.fail(expr.start, `the expression is longer than ${MAX_NODES} terms; split it`);
    return expr;
  }
}

function describeToken(token: Token, closing: string): string {
  switch (token.kind) {
    case 'end':
      return closing === '}}' ? 'the end of the text' : 'the end of the expression';
    case 'string':
      return `the string ${JSON.stringify(token.value)}`;
    default:
      return quote(String(token.value));
  }
}

function parseError(text: string, offset: number, message: string): BatonError {
  return new BatonError(
    'DEF_EXPRESSION',
    `invalid expression ${quote(clip(text))} at column ${offset + 1}: ${message}`,
    {
      details: { expression: text, offset },
    },
  );
}

function compileTemplate(text: string): CompiledTemplate {
  const fail: Fail = (offset, message) => {
    throw parseError(text, offset, message);
  };
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('${{', i);
    if (open < 0) {
      literal += text.slice(i);
      break;
    }
    if (open > i && text[open - 1] === '$') {
      // `$${{` is the escape for a literal `${{`.
      literal += text.slice(i, open - 1) + '${{';
      i = open + 3;
      continue;
    }
    literal += text.slice(i, open);
    if (literal) parts.push({ kind: 'text', text: literal });
    literal = '';
    const parser = new Parser(new Lexer(text, open + 3, fail), fail, '}}');
    const expr = parser.parseExpression();
    const close = parser.current;
    if (close.kind !== 'op' || close.value !== '}}') {
      const expected = close.kind === 'end' ? `"}}" to close the "\${{" at column ${open + 1}` : 'an operator or "}}"';
      fail(close.start, `expected ${expected}, found ${describeToken(close, '}}')}`);
    }
    parts.push({ kind: 'expression', source: text.slice(open, close.end), expr });
    i = close.end;
  }
  if (literal) parts.push({ kind: 'text', text: literal });
  const only = parts[0];
  const raw = parts.length === 1 && only?.kind === 'expression' && only.source.length === text.length;
  const references: Reference[] = [];
  for (const part of parts) if (part.kind === 'expression') referencesOf(part.expr, references);
  return Object.freeze({ text, parts: Object.freeze(parts), raw, references: Object.freeze(references) });
}

function compileBare(text: string): Expr {
  const fail: Fail = (offset, message) => {
    throw parseError(text, offset, message);
  };
  const leading = text.length - text.trimStart().length;
  if (text.startsWith('${{', leading)) fail(leading, 'write a bare expression here, without "${{ }}"');
  const parser = new Parser(new Lexer(text, 0, fail), fail, '');
  const expr = parser.parseExpression();
  const rest = parser.current;
  if (rest.kind !== 'end')
    fail(rest.start, `expected an operator or the end of the expression, found ${describeToken(rest, '')}`);
  return expr;
}

/** Adds the static prefix of every member chain rooted at a name, then looks inside computed keys. */
function referencesOf(expr: Expr, out: Reference[]): void {
  switch (expr.kind) {
    case 'literal':
      return;
    case 'root':
    case 'member':
    case 'index': {
      const accessors: (ExprOf<'member'> | ExprOf<'index'>)[] = [];
      let base: Expr = expr;
      while (base.kind === 'member' || base.kind === 'index') {
        accessors.unshift(base);
        base = base.object;
      }
      if (base.kind === 'root') {
        const path: (string | number)[] = [];
        for (const a of accessors) {
          if (a.kind === 'index') break;
          path.push(a.key);
        }
        out.push({ root: base.name, path });
      } else {
        referencesOf(base, out);
      }
      for (const a of accessors) if (a.kind === 'index') referencesOf(a.index, out);
      return;
    }
    case 'unary':
      referencesOf(expr.operand, out);
      return;
    case 'binary':
      referencesOf(expr.left, out);
      referencesOf(expr.right, out);
      return;
    case 'conditional':
      referencesOf(expr.test, out);
      referencesOf(expr.consequent, out);
      referencesOf(expr.alternate, out);
      return;
  }
}

// ---------------------------------------------------------------------------------------
// Evaluation

interface EvalContext {
  /** The text the expression's offsets index. */
  readonly text: string;
  /** How messages name the expression: the `${{ … }}` as written, or the bare text. */
  readonly label: string;
  readonly scope: Readonly<Record<string, unknown>>;
  /** Where the string sits inside the rendered value, when rendering one. */
  readonly inputPath: readonly (string | number)[] | undefined;
}

function inputError(ctx: EvalContext, message: string, path?: string): BatonError {
  return new BatonError('TASK_INPUT', `${clip(ctx.label)}: ${message}`, {
    details: {
      expression: ctx.label,
      ...(path === undefined ? {} : { path }),
      ...(ctx.inputPath === undefined ? {} : { inputPath: ctx.inputPath }),
    },
  });
}

/**
 * `optional` is set along the left of `??` (through member chains, nested `??` and the
 * branches of `?:`): there a missing key, an index out of range or a null base yields
 * `undefined` so that the fallback applies. Type errors and refused names still throw.
 */
function evaluate(expr: Expr, ctx: EvalContext, optional: boolean): unknown {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'root': {
      if (Object.hasOwn(ctx.scope, expr.name)) return ctx.scope[expr.name];
      const names = Object.keys(ctx.scope);
      const guess = suggest(expr.name, names);
      const didYouMean = guess === undefined ? '' : ` (did you mean ${quote(guess)}?)`;
      throw inputError(
        ctx,
        `unknown name ${quote(expr.name)}${didYouMean}; expressions can read ${names.join(', ') || 'nothing here'}`,
        expr.name,
      );
    }
    case 'member':
      return access(evaluate(expr.object, ctx, optional), expr.key, expr, ctx, optional);
    case 'index': {
      const base = evaluate(expr.object, ctx, optional);
      const key = evaluate(expr.index, ctx, false);
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw inputError(
          ctx,
          `an index must be a string or a number, but ${source(ctx, expr.index)} is ${describeValue(key)}`,
        );
      }
      return access(base, key, expr, ctx, optional);
    }
    case 'unary': {
      const operand = evaluate(expr.operand, ctx, false);
      if (expr.op === '!') return !operand;
      if (typeof operand !== 'number')
        throw inputError(ctx, `"-" needs a number, but ${source(ctx, expr.operand)} is ${describeValue(operand)}`);
      return -operand;
    }
    case 'conditional':
      return evaluate(expr.test, ctx, false)
        ? evaluate(expr.consequent, ctx, optional)
        : evaluate(expr.alternate, ctx, optional);
    case 'binary':
      return evaluateBinary(expr, ctx, optional);
  }
}

function evaluateBinary(expr: ExprOf<'binary'>, ctx: EvalContext, optional: boolean): unknown {
  switch (expr.op) {
    case '??': {
      const left = evaluate(expr.left, ctx, true);
      return left === null || left === undefined ? evaluate(expr.right, ctx, optional) : left;
    }
    case '&&': {
      const left = evaluate(expr.left, ctx, false);
      return left ? evaluate(expr.right, ctx, false) : left;
    }
    case '||': {
      const left = evaluate(expr.left, ctx, false);
      return left ? left : evaluate(expr.right, ctx, false);
    }
    default:
      break;
  }
  const left = evaluate(expr.left, ctx, false);
  const right = evaluate(expr.right, ctx, false);
  const operands = (): string =>
    `${source(ctx, expr.left)} is ${describeValue(left)} and ${source(ctx, expr.right)} is ${describeValue(right)}`;
  switch (expr.op) {
    case '==':
      return dataEqual(left, right);
    case '!=':
      return !dataEqual(left, right);
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const comparable =
        (typeof left === 'number' && typeof right === 'number') ||
        (typeof left === 'string' && typeof right === 'string');
      if (!comparable)
        throw inputError(ctx, `${quote(expr.op)} compares two numbers or two strings, but ${operands()}`);
      // Both operands share a primitive type here, so JavaScript's ordering is the intended one.
      const [a, b] = [left as number | string, right as number | string];
      return expr.op === '<' ? a < b : expr.op === '<=' ? a <= b : expr.op === '>' ? a > b : a >= b;
    }
    case '+':
      if (typeof left === 'string' && typeof right === 'string') return left + right;
      if (typeof left !== 'number' || typeof right !== 'number') {
        throw inputError(
          ctx,
          `"+" adds two numbers or joins two strings, but ${operands()}; to build text, write text around \${{ }}`,
        );
      }
      return finite(ctx, expr, left + right);
    default: {
      if (typeof left !== 'number' || typeof right !== 'number')
        throw inputError(ctx, `${quote(expr.op)} needs two numbers, but ${operands()}`);
      if ((expr.op === '/' || expr.op === '%') && right === 0)
        throw inputError(ctx, `division by zero: ${source(ctx, expr.right)} is 0`);
      const result =
        expr.op === '-' ? left - right : expr.op === '*' ? left * right : expr.op === '/' ? left / right : left % right;
      return finite(ctx, expr, result);
    }
  }
}

function finite(ctx: EvalContext, expr: Expr, value: number): number {
  if (!Number.isFinite(value)) throw inputError(ctx, `${source(ctx, expr)} is not a finite number`);
  return value;
}

function access(
  base: unknown,
  key: string | number,
  expr: ExprOf<'member'> | ExprOf<'index'>,
  ctx: EvalContext,
  optional: boolean,
): unknown {
  const where = source(ctx, expr.object);
  const path = where + formatKey(key);
  if (typeof key === 'string' && FORBIDDEN_NAMES.has(key))
    throw inputError(ctx, `${quote(key)} cannot be read in expressions`, path);
  if (base === null || base === undefined) {
    if (optional) return undefined;
    throw inputError(ctx, `cannot read ${formatKeyName(key)} of ${where}, which is ${String(base)}`, path);
  }
  if (Array.isArray(base)) {
    if (key === 'length') return base.length;
    if (typeof key !== 'number' || !Number.isInteger(key)) {
      throw inputError(
        ctx,
        `${where} is an array: read it with an integer index or "length", not ${formatKeyName(key)}`,
        path,
      );
    }
    if (key >= 0 && key < base.length) return base[key];
    if (optional) return undefined;
    throw inputError(ctx, `index ${key} is out of range for ${where} (length ${base.length})`, path);
  }
  if (isPlainObject(base)) {
    const name = String(key);
    if (Object.hasOwn(base, name)) return base[name];
    if (optional) return undefined;
    throw inputError(ctx, missingKeyMessage(name, where, Object.keys(base)), path);
  }
  throw inputError(ctx, `cannot read ${formatKeyName(key)} of ${where}, which is ${describeValue(base)}`, path);
}

function missingKeyMessage(name: string, where: string, keys: readonly string[]): string {
  const shown = keys.length > 20 ? `${keys.slice(0, 20).join(', ')}, … ${keys.length - 20} more` : keys.join(', ');
  const message = `${JSON.stringify(name)} is not a key of ${where} (${keys.length ? `keys: ${shown}` : 'it has no keys'})`;
  // `a.n-1` reads the key "n-1" (task ids may hold hyphens); say so rather than suggest "n".
  const dash = name.indexOf('-');
  if (dash > 0 && keys.includes(name.slice(0, dash))) return `${message}; to subtract, put spaces around "-"`;
  const guess = suggest(name, keys);
  return guess === undefined ? message : `${message}; did you mean ${JSON.stringify(guess)}?`;
}

/** `==` compares data: arrays and plain objects by content, everything else by identity (`===`). */
export function dataEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => dataEqual(item, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && dataEqual(a[key], b[key]))
    );
  }
  return false;
}

function toText(value: unknown, ctx: EvalContext): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object': {
      if (value === null) return 'null';
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch (cause) {
        throw new BatonError('TASK_INPUT', `${clip(ctx.label)}: the value cannot be written as JSON text`, {
          cause,
          details: { expression: ctx.label, ...(ctx.inputPath === undefined ? {} : { inputPath: ctx.inputPath }) },
        });
      }
      if (json !== undefined) return json;
      break;
    }
    default:
      break;
  }
  throw inputError(ctx, `the value is ${describeValue(value)}, which cannot be placed in text`);
}

// ---------------------------------------------------------------------------------------
// Public API

/**
 * Memo of at most `limit` entries that keeps what is used: two generations of half the
 * limit each; a hit in the older one moves to the newer, and when the newer is full the
 * older is dropped. Every operation is O(1): an LRU map that evicts with `keys().next()`
 * walks over the holes its deletions leave at its front, which made loading 50,000
 * distinct templates quadratic.
 */
class BoundedMemo<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();

  constructor(private readonly limit: number) {}

  get(key: string, compute: (key: string) => V): V {
    const hit = this.current.get(key);
    if (hit !== undefined) return hit;
    const old = this.previous.get(key);
    const value = old !== undefined ? old : compute(key);
    if (this.current.size >= this.limit / 2) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
    return value;
  }
}

const templates = new BoundedMemo<CompiledTemplate>(CACHE_LIMIT);
const bareExpressions = new BoundedMemo<Expr>(CACHE_LIMIT);

/** True if any string inside `value` (deeply, through arrays and plain objects) contains `${{`. */
export function hasTemplate(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('${{');
  if (Array.isArray(value)) return value.some(hasTemplate);
  if (isPlainObject(value)) return Object.values(value).some(hasTemplate);
  return false;
}

/**
 * Compiles a string with `${{ }}` templates (memoized; the result is frozen and shared).
 * `"${{ params.n }}"` is `raw`; `"n=${{ params.n }}"` interpolates; `$${{` is a literal `${{`.
 * Throws `DEF_EXPRESSION` with `details.expression` and `details.offset` (0-based).
 */
export function parseTemplateString(text: string): CompiledTemplate {
  return templates.get(text, compileTemplate);
}

/** Renders one compiled template: the value itself when `raw`, otherwise a string. Throws `TASK_INPUT`. */
export function renderTemplate(template: CompiledTemplate, scope: Readonly<Record<string, unknown>>): unknown {
  return renderCompiled(template, scope, undefined);
}

function renderCompiled(
  template: CompiledTemplate,
  scope: Readonly<Record<string, unknown>>,
  inputPath: readonly (string | number)[] | undefined,
): unknown {
  let out = '';
  for (const part of template.parts) {
    if (part.kind === 'text') {
      out += part.text;
      continue;
    }
    const ctx: EvalContext = { text: template.text, label: part.source, scope, inputPath };
    const value = evaluate(part.expr, ctx, false);
    if (template.raw) {
      if (value === undefined) throw inputError(ctx, 'the value is undefined; task inputs must be JSON values');
      return value;
    }
    out += toText(value, ctx);
  }
  return out;
}

/**
 * Every `${{ }}` reference inside `value` (deeply), with the path of the string holding it.
 * Parse errors become `problems` so that a loader can report all of them at once.
 * Example: `{ a: ['${{ tasks.x.output[0] }}'] }` → `{ path: ['a', 0], ref: { root: 'tasks', path: ['x', 'output', 0] } }`.
 */
export function collectReferences(value: unknown): {
  references: { path: readonly (string | number)[]; ref: Reference }[];
  problems: TemplateProblem[];
} {
  const references: { path: readonly (string | number)[]; ref: Reference }[] = [];
  const problems: TemplateProblem[] = [];
  // One path stack, copied only for a string that holds a template: a `with:` of 200,000
  // plain values then costs no array per value.
  const path: (string | number)[] = [];
  const visit = (node: unknown): void => {
    if (typeof node === 'string') {
      if (!node.includes('${{')) return;
      let template: CompiledTemplate;
      try {
        template = parseTemplateString(node);
      } catch (error) {
        if (!(error instanceof BatonError) || error.code !== 'DEF_EXPRESSION') throw error;
        problems.push({ message: error.message, path: [...path], code: 'DEF_EXPRESSION' });
        return;
      }
      if (template.references.length === 0) return;
      const at = [...path];
      for (const ref of template.references) references.push({ path: at, ref });
    } else if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        path.push(i);
        visit(node[i]);
        path.pop();
      }
    } else if (isPlainObject(node)) {
      for (const key in node) {
        if (!Object.hasOwn(node, key)) continue;
        path.push(key);
        visit(node[key]);
        path.pop();
      }
    }
  };
  visit(value);
  return { references, problems };
}

/**
 * Renders every string of `value` (deeply, through arrays and plain objects) against `scope`.
 * Containers are rebuilt; other leaves are returned as they are. Throws `TASK_INPUT` when
 * an expression cannot be evaluated, with `details.inputPath` saying which string.
 */
export function renderValue(value: unknown, scope: Readonly<Record<string, unknown>>): unknown {
  const render = (node: unknown, path: (string | number)[]): unknown => {
    if (typeof node === 'string') {
      if (!node.includes('${{')) return node;
      let template: CompiledTemplate;
      try {
        template = parseTemplateString(node);
      } catch (error) {
        if (!(error instanceof BatonError)) throw error;
        throw new BatonError(error.code, error.message, {
          cause: error,
          details: { ...error.details, inputPath: path },
        });
      }
      return renderCompiled(template, scope, path);
    }
    if (Array.isArray(node)) return node.map((item, i) => render(item, [...path, i]));
    // fromEntries defines keys, so an own `__proto__` key in the data stays a plain key.
    if (isPlainObject(node))
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, render(item, [...path, key])]));
    return node;
  };
  return render(value, []);
}

/** Evaluates a bare expression (no `${{ }}`), e.g. a branch condition: `params.n > 3 && run.attempt == 1`. */
export function evaluateExpression(expr: string, scope: Readonly<Record<string, unknown>>): unknown {
  const parsed = bareExpressions.get(expr, compileBare);
  return evaluate(parsed, { text: expr, label: expr, scope, inputPath: undefined }, false);
}

// ---------------------------------------------------------------------------------------
// Helpers

/** Only these objects (and arrays) may be read by expressions: prototype `Object.prototype` or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A value named for a message: primitives with their value, containers by kind. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return `the string ${JSON.stringify(clip(value, 40))}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${String(value)}`;
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value)) return 'an object';
  if (typeof value === 'object') {
    const tag = Object.prototype.toString.call(value).slice(8, -1);
    return tag === 'Object' ? 'a class instance, not plain data' : `a ${tag}`;
  }
  return `a ${typeof value}`;
}

/** The source text of a node, as the user wrote it. */
function source(ctx: EvalContext, expr: Expr): string {
  return ctx.text.slice(expr.start, expr.end);
}

function formatKey(key: string | number): string {
  return typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function formatKeyName(key: string | number): string {
  return typeof key === 'number' ? `index ${key}` : JSON.stringify(key);
}

function quote(text: string): string {
  return `"${text}"`;
}

function clip(text: string, max = MAX_LABEL): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
