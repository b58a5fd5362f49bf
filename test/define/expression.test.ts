import { describe, it, expect } from 'vitest';
import {
  collectReferences,
  evaluateExpression,
  hasTemplate,
  parseTemplateString,
  renderTemplate,
  renderValue,
} from '../../src/define/expression.js';
import { thrown } from '../helpers/thrown.js';

const scope = {
  params: {
    day: '2024-01-01',
    n: 3,
    zero: 0,
    empty: '',
    flag: true,
    nothing: null,
    list: [10, 20, 30],
    key: 'constructor',
  },
  tasks: {
    extract: { output: { a: 1, b: [1, 2] } },
    count: { output: { n: 7 } },
    'load-data': { output: 'loaded' },
  },
  run: { id: 'run_1', attempt: 1 },
};

const evaluate = (expr: string): unknown => evaluateExpression(expr, scope);

describe('raw values', () => {
  it('keeps the type of a string that is exactly one template', () => {
    expect(renderValue('${{ params.n }}', scope)).toBe(3);
    expect(renderValue('${{ params.flag }}', scope)).toBe(true);
    expect(renderValue('${{ params.nothing }}', scope)).toBeNull();
    expect(renderValue('${{ tasks.extract.output }}', scope)).toBe(scope.tasks.extract.output);
    expect(renderValue('${{ params.list }}', scope)).toEqual([10, 20, 30]);
  });

  it('allows any whitespace inside the braces, none outside', () => {
    expect(renderValue('${{params.n}}', scope)).toBe(3);
    expect(renderValue('${{ \n\t params.n \n }}', scope)).toBe(3);
    expect(renderValue(' ${{ params.n }}', scope)).toBe(' 3');
    expect(renderValue('${{ params.n }} ', scope)).toBe('3 ');
  });

  it('refuses an undefined result, which is not a JSON value', () => {
    const error = thrown(() => renderValue('${{ params.u }}', { params: { u: undefined } }));
    expect(error.code).toBe('TASK_INPUT');
    expect(error.message).toBe('${{ params.u }}: the value is undefined; task inputs must be JSON values');
  });
});

describe('interpolation', () => {
  it('stringifies each value by its type', () => {
    expect(renderValue('day=${{ params.day }} n=${{ tasks.count.output.n }}', scope)).toBe('day=2024-01-01 n=7');
    expect(renderValue('[${{ params.nothing }}|${{ params.flag }}|${{ params.empty }}]', scope)).toBe('[null|true|]');
    expect(renderValue('o=${{ tasks.extract.output }}', scope)).toBe('o={"a":1,"b":[1,2]}');
    expect(renderValue('l=${{ params.list }}', scope)).toBe('l=[10,20,30]');
  });

  it('joins adjacent templates as text, even when both are numbers', () => {
    expect(renderValue('${{ params.n }}${{ params.zero }}', scope)).toBe('30');
  });

  it('refuses undefined in text', () => {
    const error = thrown(() => renderValue('x=${{ params.u }}', { params: { u: undefined } }));
    expect(error.code).toBe('TASK_INPUT');
    expect(error.message).toBe('${{ params.u }}: the value is undefined, which cannot be placed in text');
  });

  it('reports a value that cannot be written as JSON, with its cause', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const error = thrown(() => renderValue('x=${{ params.c }}', { params: { c: cyclic } }));
    expect(error.code).toBe('TASK_INPUT');
    expect(error.message).toContain('cannot be written as JSON');
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('leaves strings without templates alone', () => {
    expect(renderValue('plain }} text $ {{ x }}', scope)).toBe('plain }} text $ {{ x }}');
  });
});

describe('escapes', () => {
  it('turns $${{ into a literal ${{', () => {
    expect(renderValue('$${{ params.n }}', scope)).toBe('${{ params.n }}');
    expect(renderValue('a $${{ x }} b ${{ params.n }}', scope)).toBe('a ${{ x }} b 3');
    expect(renderValue('${{ params.n }}$${{', scope)).toBe('3${{');
    expect(renderValue('$$${{ x }}', scope)).toBe('$${{ x }}');
  });

  it('an escaped template is text, so the string is not raw', () => {
    expect(parseTemplateString('$${{ x }}').raw).toBe(false);
  });

  it('reads string literals with escapes, in both quotes', () => {
    expect(evaluate(`'it\\'s'`)).toBe("it's");
    expect(evaluate(`"say \\"hi\\""`)).toBe('say "hi"');
    expect(evaluate(`"a\\nb\\tc\\\\"`)).toBe('a\nb\tc\\');
    expect(evaluate(`"\\u0041\\u{1F600}"`)).toBe('A😀');
    expect(renderValue('${{ "}}" }}', scope)).toBe('}}');
  });

  it('refuses unknown escapes and unterminated strings', () => {
    const unknown = thrown(() => evaluate(`"a\\qb"`));
    expect(unknown.code).toBe('DEF_EXPRESSION');
    expect(unknown.message).toBe('invalid expression ""a\\qb"" at column 3: unknown escape \\q in a string');
    const open = thrown(() => parseTemplateString('${{ "abc }}'));
    expect(open.details).toEqual({ expression: '${{ "abc }}', offset: 4 });
    expect(open.message).toContain('unterminated string');
    expect(thrown(() => evaluate('"\\u12"')).message).toBe(
      'invalid expression ""\\u12"" at column 2: expected \\uXXXX or \\u{X…} with a valid code point',
    );
    expect(thrown(() => evaluate('"\\u{110000}"')).code).toBe('DEF_EXPRESSION');
  });
});

describe('operators', () => {
  it.each([
    ['1 + 2', 3],
    ['7 - 10', -3],
    ['6 * 7', 42],
    ['7 / 2', 3.5],
    ['7 % 3', 1],
    ['-params.n', -3],
    ['--2', 2],
    ['!params.flag', false],
    ['!params.empty', true],
    ['!!params.list', true],
    ['"ab" + "cd"', 'abcd'],
    ['1.5e2', 150],
    ['1 == 1', true],
    ['1 == "1"', false],
    ['null == null', true],
    ['params.list == tasks.extract.output.b', false],
    ['tasks.extract.output.b == tasks.extract.output.b', true],
    ['1 != 2', true],
    ['"a" != "a"', false],
    ['1 < 2', true],
    ['2 <= 2', true],
    ['3 > 4', false],
    ['4 >= 4', true],
    ['"apple" < "banana"', true],
    ['params.day >= "2024-01-01"', true],
    ['true && "x"', 'x'],
    ['0 && "x"', 0],
    ['"" || "fallback"', 'fallback'],
    ['"first" || "second"', 'first'],
    ['null || null', null],
    ['null ?? "d"', 'd'],
    ['params.zero ?? 5', 0],
    ['params.empty ?? "d"', ''],
    ['params.flag ? "yes" : "no"', 'yes'],
    ['params.zero ? "yes" : "no"', 'no'],
  ])('%s → %j', (expr, expected) => {
    expect(evaluate(expr)).toEqual(expected);
  });

  it('compares arrays and objects by content with ==', () => {
    const data = { params: { a: [1, { x: 'y' }], b: [1, { x: 'y' }], c: [1, { x: 'z' }] } };
    expect(evaluateExpression('params.a == params.b', data)).toBe(true);
    expect(evaluateExpression('params.a == params.c', data)).toBe(false);
    expect(evaluateExpression('params.a[1] != params.c[1]', data)).toBe(true);
  });

  it.each([
    [
      '"a" + 1',
      '"a" + 1: "+" adds two numbers or joins two strings, but "a" is the string "a" and 1 is the number 1; to build text, write text around ${{ }}',
    ],
    ['1 < "2"', '1 < "2": "<" compares two numbers or two strings, but 1 is the number 1 and "2" is the string "2"'],
    ['null >= 0', 'null >= 0: ">=" compares two numbers or two strings, but null is null and 0 is the number 0'],
    ['-params.day', '-params.day: "-" needs a number, but params.day is the string "2024-01-01"'],
    ['params.list * 2', 'params.list * 2: "*" needs two numbers, but params.list is an array and 2 is the number 2'],
    ['1 / params.zero', '1 / params.zero: division by zero: params.zero is 0'],
    ['5 % 0', '5 % 0: division by zero: 0 is 0'],
    ['1e308 * 10', '1e308 * 10: 1e308 * 10 is not a finite number'],
  ])('refuses %s', (expr, message) => {
    const error = thrown(() => evaluate(expr));
    expect(error.code).toBe('TASK_INPUT');
    expect(error.message).toBe(message);
  });
});

describe('precedence and associativity', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 - 3', 3],
    ['2 * 3 % 4', 2],
    ['12 / 3 / 2', 2],
    ['-2 * 3', -6],
    ['-(2 + 3)', -5],
    ['!true == false', true],
    ['1 + 1 == 2', true],
    ['1 < 2 == 2 < 3', true],
    ['true || false && false', true],
    ['(true || false) && false', false],
    ['null ?? 1 + 2', 3],
    ['false ? 1 : true ? 2 : 3', 2],
    ['true ? false ? 1 : 2 : 3', 2],
    ['null ?? false ? "a" : "b"', 'b'],
    ['1 + 2 > 2 ? "big" : "small"', 'big'],
    ['params.list[1] + tasks.count.output.n * 2', 34],
  ])('%s → %j', (expr, expected) => {
    expect(evaluate(expr)).toEqual(expected);
  });

  it('refuses ?? mixed with && or || without parentheses, like JavaScript', () => {
    for (const expr of ['params.a || params.b ?? 1', 'params.a ?? params.b && 1']) {
      const error = thrown(() => evaluate(expr));
      expect(error.code).toBe('DEF_EXPRESSION');
      expect(error.message).toContain('in parentheses when it is mixed with "??"');
    }
    expect(evaluate('(params.nothing || null) ?? 4')).toBe(4);
    expect(evaluate('params.nothing ?? (false || 5)')).toBe(5);
  });
});

describe('short-circuit', () => {
  it('does not evaluate the right of && and || when the left decides', () => {
    expect(evaluate('false && tasks.missing.output')).toBe(false);
    expect(evaluate('params.flag || nosuchroot.x')).toBe(true);
    expect(evaluate('params.n ?? nosuchroot')).toBe(3);
  });

  it('evaluates only the chosen branch of ?:', () => {
    expect(evaluate('params.flag ? 1 : nosuchroot')).toBe(1);
    expect(evaluate('params.zero ? nosuchroot : 2')).toBe(2);
  });

  it('does evaluate the right when the left does not decide', () => {
    const error = thrown(() => evaluate('params.flag && params.missing'));
    expect(error.code).toBe('TASK_INPUT');
    expect(error.message).toContain('"missing" is not a key of params');
  });
});

describe('?? on missing data', () => {
  it.each([
    ['params.missing ?? 5', 5],
    ['tasks.nope.output.rows ?? "none"', 'none'],
    ['params.nothing.deep.deeper ?? 1', 1],
    ['params.list[9] ?? 0', 0],
    ['params.list[-1] ?? 0', 0],
    ['params.missing ?? params.gone ?? 3', 3],
    ['(params.flag ? params.missing : 1) ?? 2', 2],
    ['tasks.extract.output.a ?? 9', 1],
    ['params.missing ?? params.n', 3],
  ])('%s → %j', (expr, expected) => {
    expect(evaluate(expr)).toEqual(expected);
  });

  it('does not hide a missing read in the fallback itself', () => {
    const error = thrown(() => evaluate('params.missing ?? params.gone'));
    expect(error.message).toContain('"gone" is not a key of params');
  });

  it('does not hide a missing read inside an operand of another operator', () => {
    const error = thrown(() => evaluate('(params.missing + 1) ?? 2'));
    expect(error.message).toContain('"missing" is not a key of params');
  });

  it('still refuses unknown roots, type errors and forbidden names', () => {
    expect(thrown(() => evaluate('nosuchroot.x ?? 1')).message).toContain('unknown name "nosuchroot"');
    expect(thrown(() => evaluate('params.day.length ?? 1')).message).toContain('which is the string "2024-01-01"');
    expect(thrown(() => evaluate('params[params.key] ?? 1')).message).toContain('"constructor" cannot be read');
  });
});

describe('prototype access is refused', () => {
  it.each([
    ['params.__proto__', 8],
    ['params.constructor', 8],
    ['params.prototype', 8],
    ['params["constructor"]', 8],
    ["tasks['__proto__']", 7],
    ['constructor', 1],
    ['__proto__.x', 1],
  ])('at parse time when written: %s', (expr, column) => {
    const error = thrown(() => evaluate(expr));
    expect(error.code).toBe('DEF_EXPRESSION');
    expect(error.message).toContain(`at column ${column}: `);
    expect(error.message).toContain('cannot be read in expressions');
  });

  it('in templates too, with the offset in the whole string', () => {
    const error = thrown(() => parseTemplateString('x ${{ tasks.x.output.constructor }}'));
    expect(error.code).toBe('DEF_EXPRESSION');
    expect(error.details).toEqual({ expression: 'x ${{ tasks.x.output.constructor }}', offset: 21 });
  });

  it('at evaluation time when computed', () => {
    const data = {
      params: { k: 'constructor', p: '__proto__', proto: 'prototype' },
      tasks: { x: { output: { a: 1 } } },
    };
    for (const expr of [
      'tasks.x.output[params.k]',
      'params[params.p]',
      'params["proto" + "type"]',
      'params[params.proto]',
    ]) {
      const error = thrown(() => evaluateExpression(expr, data));
      expect(error.code).toBe('TASK_INPUT');
      expect(error.message).toMatch(/"(constructor|__proto__|prototype)" cannot be read in expressions$/);
    }
    expect(thrown(() => evaluateExpression('tasks.x.output[params.k]', data)).details).toEqual({
      expression: 'tasks.x.output[params.k]',
      path: 'tasks.x.output.constructor',
    });
  });

  it('refuses even an own data key named __proto__', () => {
    const data = { params: JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>, k: '__proto__' };
    expect(Object.hasOwn(data.params, '__proto__')).toBe(true);
    expect(thrown(() => evaluateExpression('params[k]', data)).code).toBe('TASK_INPUT');
  });

  it('does not read inherited members', () => {
    for (const name of ['toString', 'hasOwnProperty', 'valueOf']) {
      const error = thrown(() => evaluate(`params.${name}`));
      expect(error.code).toBe('TASK_INPUT');
      expect(error.message).toContain(`"${name}" is not a key of params`);
    }
    expect(thrown(() => evaluate('params.list.map')).message).toBe(
      'params.list.map: params.list is an array: read it with an integer index or "length", not "map"',
    );
  });

  it('reads only plain objects and arrays', () => {
    class Secret {
      token = 'x';
    }
    const data = { params: { when: new Date(0), secret: new Secret(), map: new Map([['a', 1]]), fn: () => 1 } };
    expect(thrown(() => evaluateExpression('params.when.getTime', data)).message).toContain('which is a Date');
    expect(thrown(() => evaluateExpression('params.secret.token', data)).message).toContain(
      'which is a class instance, not plain data',
    );
    expect(thrown(() => evaluateExpression('params.map.size', data)).message).toContain('which is a Map');
    expect(thrown(() => evaluateExpression('params.fn.name', data)).message).toContain('which is a function');
    expect(
      evaluateExpression('params.o.a', { params: { o: Object.assign(Object.create(null) as object, { a: 1 }) } }),
    ).toBe(1);
  });

  it('has no calls, assignment or constructors', () => {
    expect(thrown(() => evaluate('params.fn(1)')).message).toBe(
      'invalid expression "params.fn(1)" at column 10: function calls are not supported',
    );
    expect(thrown(() => evaluate('params.n = 1')).message).toContain('assignment is not supported');
    expect(thrown(() => evaluate('new Date')).message).toBe(
      'invalid expression "new Date" at column 5: expected an operator or the end of the expression, found "Date"',
    );
    expect(thrown(() => evaluate('/x/')).code).toBe('DEF_EXPRESSION');
  });
});

describe('member and index access', () => {
  it('reads indices, string keys and length', () => {
    expect(evaluate('params.list[0]')).toBe(10);
    expect(evaluate('params.list[1 + 1]')).toBe(30);
    expect(evaluate('params.list.length')).toBe(3);
    expect(evaluate('params["list"]["length"]')).toBe(3);
    expect(evaluate('tasks["load-data"].output')).toBe('loaded');
    expect(evaluateExpression('params.o[1]', { params: { o: { '1': 'one' } } })).toBe('one');
  });

  it('reads member names with inner hyphens, as task ids have them', () => {
    expect(evaluate('tasks.load-data.output')).toBe('loaded');
    expect(evaluate('tasks.count.output.n - 1')).toBe(6);
    expect(evaluate('tasks.count.output.n -1')).toBe(6);
  });

  it('reads a value that is null', () => {
    expect(evaluate('params.nothing')).toBeNull();
  });
});

describe('evaluation errors', () => {
  it('name the expression and the missing key, with the keys that exist', () => {
    const error = thrown(() => renderValue({ rows: '${{ tasks.extract.output.rows }}' }, scope));
    expect(error.code).toBe('TASK_INPUT');
    expect(error.message).toBe(
      '${{ tasks.extract.output.rows }}: "rows" is not a key of tasks.extract.output (keys: a, b)',
    );
    expect(error.details).toEqual({
      expression: '${{ tasks.extract.output.rows }}',
      path: 'tasks.extract.output.rows',
      inputPath: ['rows'],
    });
  });

  it('name the template segment, not the whole string', () => {
    const error = thrown(() => renderValue('n=${{ params.n }} m=${{ params.m }}', scope));
    expect(error.message).toBe(
      '${{ params.m }}: "m" is not a key of params (keys: day, n, zero, empty, flag, nothing, list, key)',
    );
  });

  it('suggest a close key', () => {
    expect(thrown(() => evaluate('tasks.extarct.output')).message).toBe(
      'tasks.extarct.output: "extarct" is not a key of tasks (keys: extract, count, load-data); did you mean "extract"?',
    );
  });

  it('explain a hyphen that was meant as subtraction', () => {
    expect(thrown(() => evaluate('tasks.count.output.n-1')).message).toBe(
      'tasks.count.output.n-1: "n-1" is not a key of tasks.count.output (keys: n); to subtract, put spaces around "-"',
    );
  });

  it('say when an object has no keys, and shorten long key lists', () => {
    expect(thrown(() => evaluateExpression('params.x', { params: {} })).message).toBe(
      'params.x: "x" is not a key of params (it has no keys)',
    );
    const many = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`k${i}`, i]));
    expect(thrown(() => evaluateExpression('params.zz', { params: many })).message).toContain('k18, k19, … 5 more)');
  });

  it('report an index out of range and a null base', () => {
    expect(thrown(() => evaluate('params.list[5]')).message).toBe(
      'params.list[5]: index 5 is out of range for params.list (length 3)',
    );
    const nullBase = thrown(() => evaluate('params.nothing.x'));
    expect(nullBase.message).toBe('params.nothing.x: cannot read "x" of params.nothing, which is null');
    expect(nullBase.details.path).toBe('params.nothing.x');
  });

  it('report an unknown root with the roots in scope', () => {
    expect(thrown(() => evaluate('parms.day')).message).toBe(
      'parms.day: unknown name "parms" (did you mean "params"?); expressions can read params, tasks, run',
    );
  });

  it('refuse an index that is neither string nor number', () => {
    expect(thrown(() => evaluate('params.list[params.flag]')).message).toBe(
      'params.list[params.flag]: an index must be a string or a number, but params.flag is true',
    );
  });

  it('give the path inside the rendered value', () => {
    const error = thrown(() => renderValue({ a: [1, { b: 'x ${{ params.nope }}' }] }, scope));
    expect(error.details.inputPath).toEqual(['a', 1, 'b']);
  });
});

describe('parse errors', () => {
  it.each([
    ['${{ params. }}', 12, 'expected a property name after ".", found "}}"'],
    ['${{ }}', 4, 'expected an expression, found "}}"'],
    ['${{ params.day', 14, 'expected "}}" to close the "${{" at column 1, found the end of the text'],
    ['hello ${{ ) }}', 10, 'expected an expression, found ")"'],
    ['${{ 1 2 }}', 6, 'expected an operator or "}}", found "2"'],
    ['${{ (1 + 2 }}', 11, 'expected ")" to close "(", found "}}"'],
    ['${{ a[0 }}', 8, 'expected "]" to close "[", found "}}"'],
    ['${{ a ? 1 }}', 10, 'expected ":" to separate the branches of "?", found "}}"'],
    ['${{ a.0 }}', 6, 'expected a property name after ".", found "0"; write [0] to index an array'],
    ['${{ a === b }}', 6, 'write "==": it already compares without converting types'],
    ['${{ a & b }}', 6, 'unexpected "&"; write "&&"'],
    ['${{ 12abc }}', 6, 'unexpected "a" after the number 12'],
    ['${{ a.b }} and ${{ # }}', 19, 'unexpected character "#"'],
  ])('%s: offset %i', (text, offset, message) => {
    const error = thrown(() => parseTemplateString(text));
    expect(error.code).toBe('DEF_EXPRESSION');
    expect(error.details).toEqual({ expression: text, offset });
    expect(error.message).toBe(`invalid expression "${text}" at column ${offset + 1}: ${message}`);
  });

  it('in bare expressions, counts from the start of the expression', () => {
    const error = thrown(() => evaluate('1 +'));
    expect(error.details).toEqual({ expression: '1 +', offset: 3 });
    expect(error.message).toBe(
      'invalid expression "1 +" at column 4: expected an expression, found the end of the expression',
    );
  });

  it('asks for a bare expression without ${{ }} where one is expected', () => {
    expect(thrown(() => evaluate('  ${{ params.n }}')).message).toContain(
      'write a bare expression here, without "${{ }}"',
    );
  });

  it('bounds nesting and length instead of overflowing the stack', () => {
    const deep = thrown(() => evaluate('('.repeat(500) + '1' + ')'.repeat(500)));
    expect(deep.code).toBe('DEF_EXPRESSION');
    expect(deep.message).toContain('nests deeper than 64 levels');
    expect(thrown(() => evaluate('!'.repeat(500) + 'true')).message).toContain('nests deeper');
    const long = thrown(() => evaluate(Array.from({ length: 2000 }, () => '1').join(' + ')));
    expect(long.message).toContain('longer than 1000 terms');
    expect(evaluate('('.repeat(30) + '1' + ')'.repeat(30))).toBe(1);
  });

  it('renderValue adds the input path to a parse error', () => {
    const error = thrown(() => renderValue({ a: ['${{ ( }}'] }, scope));
    expect(error.code).toBe('DEF_EXPRESSION');
    expect(error.details).toEqual({ expression: '${{ ( }}', offset: 6, inputPath: ['a', 0] });
  });
});

describe('collectReferences', () => {
  it('walks objects and arrays and gives the path of each string', () => {
    const { references, problems } = collectReferences({
      day: '${{ params.day }}',
      rows: ['${{ tasks.extract.output.rows }}', 'plain', 3, { deep: 'x=${{ tasks.count.output.n }} y=${{ run.id }}' }],
    });
    expect(problems).toEqual([]);
    expect(references).toEqual([
      { path: ['day'], ref: { root: 'params', path: ['day'] } },
      { path: ['rows', 0], ref: { root: 'tasks', path: ['extract', 'output', 'rows'] } },
      { path: ['rows', 3, 'deep'], ref: { root: 'tasks', path: ['count', 'output', 'n'] } },
      { path: ['rows', 3, 'deep'], ref: { root: 'run', path: ['id'] } },
    ]);
  });

  it('stops a path at the first computed index and collects the references inside it', () => {
    const { references } = collectReferences('${{ tasks.x.output[params.i].y }}');
    expect(references.map((r) => r.ref)).toEqual([
      { root: 'tasks', path: ['x', 'output'] },
      { root: 'params', path: ['i'] },
    ]);
  });

  it('keeps literal indices and a bare root', () => {
    const { references } = collectReferences('${{ tasks["load-data"].output[0] ?? params }}');
    expect(references.map((r) => r.ref)).toEqual([
      { root: 'tasks', path: ['load-data', 'output', 0] },
      { root: 'params', path: [] },
    ]);
  });

  it('finds references in every operand, and none in literals or escapes', () => {
    const { references } = collectReferences({
      a: '${{ !a.b ? (c.d + 1) : -e }}',
      b: '$${{ f.g }}',
      c: '${{ "h.i" }}',
    });
    expect(references.map((r) => r.ref)).toEqual([
      { root: 'a', path: ['b'] },
      { root: 'c', path: ['d'] },
      { root: 'e', path: [] },
    ]);
  });

  it('turns parse errors into problems and keeps going', () => {
    const { references, problems } = collectReferences({ a: ['${{ params. }}'], b: '${{ params.ok }}' });
    expect(problems).toEqual([
      {
        code: 'DEF_EXPRESSION',
        path: ['a', 0],
        message: 'invalid expression "${{ params. }}" at column 13: expected a property name after ".", found "}}"',
      },
    ]);
    expect(references).toEqual([{ path: ['b'], ref: { root: 'params', path: ['ok'] } }]);
  });
});

describe('compiled templates', () => {
  it('are cached by text, frozen, and know whether they are raw', () => {
    const first = parseTemplateString('n=${{ params.n }}');
    expect(parseTemplateString('n=${{ params.n }}')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first.raw).toBe(false);
    expect(parseTemplateString('${{ params.n }}').raw).toBe(true);
    expect(parseTemplateString('${{ a }}${{ b }}').raw).toBe(false);
  });

  it('hold no scope: one text renders each scope it is given', () => {
    const text = '${{ params.day }}/${{ params.n ?? 0 }}';
    expect(renderValue(text, { params: { day: 'mon', n: 1 } })).toBe('mon/1');
    expect(renderValue(text, { params: { day: 'tue' } })).toBe('tue/0');
    expect(thrown(() => renderValue(text, { params: {} })).code).toBe('TASK_INPUT');
    expect(renderValue(text, { params: { day: 'wed', n: 3 } })).toBe('wed/3');
    expect(renderTemplate(parseTemplateString(text), { params: { day: 'thu', n: 4 } })).toBe('thu/4');
    expect(evaluateExpression('params.n', { params: { n: 1 } })).toBe(1);
    expect(evaluateExpression('params.n', { params: { n: 2 } })).toBe(2);
  });

  it('are evicted least recently used first once the cache is full', () => {
    const first = parseTemplateString('${{ params.first }}');
    const kept = parseTemplateString('${{ params.kept }}');
    for (let i = 0; i < 10_000; i++) {
      if (i % 1000 === 0) expect(parseTemplateString('${{ params.kept }}')).toBe(kept);
      parseTemplateString(`\${{ params.p${i} }}`);
    }
    expect(parseTemplateString('${{ params.kept }}')).toBe(kept);
    const again = parseTemplateString('${{ params.first }}');
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('do not cache failures', () => {
    expect(thrown(() => parseTemplateString('${{ ( }}')).code).toBe('DEF_EXPRESSION');
    expect(thrown(() => parseTemplateString('${{ ( }}')).code).toBe('DEF_EXPRESSION');
  });
});

describe('hasTemplate', () => {
  it('looks through arrays and plain objects', () => {
    expect(hasTemplate('${{ a }}')).toBe(true);
    expect(hasTemplate('$${{ escaped }}')).toBe(true);
    expect(hasTemplate({ a: [1, { b: 'x ${{ y }}' }] })).toBe(true);
    expect(hasTemplate({ a: [1, { b: 'x { y }' }], c: null })).toBe(false);
    expect(hasTemplate(42)).toBe(false);
    expect(hasTemplate(new Date(0))).toBe(false);
  });
});

describe('renderValue', () => {
  it('renders deeply and leaves other leaves as they are', () => {
    const when = new Date(0);
    const input = {
      day: '${{ params.day }}',
      nested: { list: ['${{ params.n }}', 'n=${{ params.n }}', 5, null, true], when },
      plain: 'text',
    };
    const output = renderValue(input, scope) as typeof input;
    expect(output).toEqual({
      day: '2024-01-01',
      nested: { list: [3, 'n=3', 5, null, true], when },
      plain: 'text',
    });
    expect(output.nested.when).toBe(when);
    expect(input.day).toBe('${{ params.day }}');
  });

  it('keeps an own __proto__ key a plain key', () => {
    const input = JSON.parse('{"__proto__": "${{ params.n }}"}') as Record<string, unknown>;
    const output = renderValue(input, scope) as Record<string, unknown>;
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype);
    expect(Object.hasOwn(output, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(output, '__proto__')?.value).toBe(3);
  });

  it('returns non-template values unchanged', () => {
    expect(renderValue(12, scope)).toBe(12);
    expect(renderValue(null, scope)).toBeNull();
    expect(renderValue('no templates', scope)).toBe('no templates');
  });
});
