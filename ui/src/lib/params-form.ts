/**
 * The params form of a flow, generated from its JSON Schema: which field each param gets,
 * and how the typed text becomes a params object. Pure: no DOM.
 */
import type { JsonSchema } from '../api/types.js';

/** The input a param is edited with. */
export type FieldKind = 'text' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

/** One field of the params form. */
export interface ParamField {
  name: string;
  kind: FieldKind;
  required: boolean;
  title: string;
  description: string | null;
  options: unknown[];
  /** The initial text of the field (from the schema's default). */
  initial: string;
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null');
  return schema.type;
}

/** The fields of the form for a params schema (an object schema; anything else gives none). */
export function paramFields(schema: JsonSchema | null | undefined): ParamField[] {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  return Object.entries(props).map(([name, s]) => {
    const type = typeOf(s);
    const kind: FieldKind = s.enum
      ? 'enum'
      : type === 'boolean'
        ? 'boolean'
        : type === 'integer'
          ? 'integer'
          : type === 'number'
            ? 'number'
            : type === 'string' || type === undefined
              ? 'text'
              : 'json';
    let initial = '';
    if (s.default !== undefined) {
      initial =
        kind === 'json' ? JSON.stringify(s.default) : kind === 'enum' ? JSON.stringify(s.default) : String(s.default);
    }
    return {
      name,
      kind,
      required: required.has(name),
      title: s.title ?? name,
      description: s.description ?? null,
      options: s.enum ?? [],
      initial,
    };
  });
}

/** The params object from the fields' texts, or the problems found (by field name). */
export function collectParams(
  fields: ParamField[],
  values: Record<string, string>,
): { params: Record<string, unknown>; problems: Record<string, string> } {
  const params: Record<string, unknown> = {};
  const problems: Record<string, string> = {};
  for (const f of fields) {
    const text = (values[f.name] ?? f.initial).trim();
    if (text === '') {
      if (f.required && f.kind !== 'boolean') problems[f.name] = 'required';
      if (f.kind === 'boolean' && f.required) params[f.name] = false;
      continue;
    }
    switch (f.kind) {
      case 'text':
        params[f.name] = values[f.name] ?? f.initial;
        break;
      case 'number':
      case 'integer': {
        const n = Number(text);
        if (!Number.isFinite(n) || (f.kind === 'integer' && !Number.isInteger(n)))
          problems[f.name] = `not ${f.kind === 'integer' ? 'an integer' : 'a number'}`;
        else params[f.name] = n;
        break;
      }
      case 'boolean':
        params[f.name] = text === 'true';
        break;
      case 'enum':
      case 'json':
        try {
          params[f.name] = JSON.parse(text);
        } catch {
          if (f.kind === 'enum') params[f.name] = text;
          else problems[f.name] = 'not valid JSON';
        }
        break;
    }
  }
  return { params, problems };
}
