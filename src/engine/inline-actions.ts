/**
 * Tasks the engine carries out itself, without an executor or a worker slot: a map
 * learning its items, a choice by expression, and the parking kinds (sleep, wait_until,
 * wait_for_event, approval; subflow launches its child elsewhere). Each turns the task's
 * settings, rendered against its scope, into one input for the run machine. Bad settings
 * throw a typed error, which fails the attempt like any task failure.
 */
import { readDuration } from '../core/duration.js';
import { BatonError } from '../core/errors.js';
import type { TaskSpec } from '../core/model.js';
import { isParkingKind } from '../core/model.js';
import { isPayloadRef, PAYLOAD_KEY } from '../core/payload-ref.js';
import type { Wait } from '../core/run-machine.js';
import { evaluateExpression, renderValue } from '../define/expression.js';

/** True for the kinds this module (or the engine's subflow launcher) carries out. */
export function isInlineKind(spec: TaskSpec): boolean {
  if (spec.kind === 'map' || isParkingKind(spec.kind)) return true;
  return spec.kind === 'choice' && (spec.choice?.rules.length ?? 0) > 0;
}

type Scope = Readonly<Record<string, unknown>>;

function render(spec: TaskSpec, value: unknown, scope: Scope, setting: string): unknown {
  try {
    return renderValue(value, scope);
  } catch (error) {
    if (error instanceof BatonError) {
      throw new BatonError('TASK_INPUT', `task ${spec.id}: ${setting}: ${error.message}`, { hint: error.hint });
    }
    throw error;
  }
}

/** The list a map runs over, cut into batches if asked. */
export function mapItems(spec: TaskSpec, scope: Scope): unknown[] {
  const map = spec.map;
  if (!map) throw new BatonError('DEF_INVALID', `task ${spec.id} is not a map`);
  const list = render(spec, map.over, scope, 'map.over');
  if (isPayloadRef(list)) {
    const { path, bytes } = list[PAYLOAD_KEY];
    throw new BatonError(
      'MAP_OVER_INVALID',
      `task ${spec.id}: map.over names an output stored by reference (${bytes} bytes of JSON at ${path}, over limits.output_bytes)`,
      {
        hint: `The engine reads a map's list inline: raise limits.output_bytes above ${bytes}, or map over a shorter list (keys or data paths) and read each item's data in its task.`,
      },
    );
  }
  if (!Array.isArray(list)) {
    throw new BatonError(
      'MAP_OVER_INVALID',
      `task ${spec.id}: map.over must yield an array, got ${list === null ? 'null' : typeof list}`,
      { hint: `Check the expression ${map.over}: it should name a list, like \${{ tasks.list.output }}.` },
    );
  }
  if (!map.batch) return list;
  const batches: unknown[][] = [];
  for (let i = 0; i < list.length; i += map.batch) batches.push(list.slice(i, i + map.batch));
  return batches;
}

/** The branches a choice selects by its rules. */
export function choiceSelection(spec: TaskSpec, scope: Scope): string[] {
  const choice = spec.choice;
  if (!choice) throw new BatonError('DEF_INVALID', `task ${spec.id} is not a choice`);
  const selected: string[] = [];
  for (const [n, rule] of choice.rules.entries()) {
    if (rule.when === null) continue;
    const value = rule.when.includes('${{')
      ? render(spec, rule.when, scope, `choice rule ${n + 1}`)
      : evaluateExpression(rule.when, scope);
    if (!value) continue;
    for (const target of rule.then) if (!selected.includes(target)) selected.push(target);
    if (choice.mode === 'first') return selected;
  }
  return selected.length > 0 ? selected : [...choice.otherwise];
}

function timeoutAt(spec: TaskSpec, now: number): number | null {
  const ms = spec.config.timeoutMs;
  return typeof ms === 'number' ? now + ms : null;
}

function instant(spec: TaskSpec, value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' || value instanceof Date) {
    const at = new Date(value).getTime();
    if (!Number.isNaN(at)) return at;
  }
  throw new BatonError('TASK_INPUT', `task ${spec.id}: wait_until needs an instant, got ${JSON.stringify(value)}`, {
    hint: 'Give an ISO 8601 time such as 2026-01-31T12:00:00Z, or milliseconds since the epoch.',
  });
}

/** What a parking task (other than subflow) waits for. */
export function parkingWait(spec: TaskSpec, scope: Scope, now: number): Wait {
  switch (spec.kind) {
    case 'sleep': {
      const raw = render(spec, spec.config.duration, scope, 'sleep');
      // Bounded as a written one is (the limit duration_ms), now that its value is known.
      const read = readDuration(raw);
      if (!read.ok && read.reason === 'not_a_duration') {
        throw new BatonError('TASK_INPUT', `task ${spec.id}: sleep needs a duration, got ${JSON.stringify(raw)}`, {
          hint: 'Write a duration such as 30s, 10m or 2h, or a number of milliseconds.',
        });
      }
      if (!read.ok) throw new BatonError('TASK_INPUT', `task ${spec.id}: sleep: ${read.message}`, { hint: read.hint });
      return { kind: 'timer', until: now + read.ms };
    }
    case 'wait_until':
      return { kind: 'timer', until: instant(spec, render(spec, spec.config.until, scope, 'wait_until')) };
    case 'wait_for_event': {
      const key =
        spec.config.match === null || spec.config.match === undefined
          ? null
          : render(spec, spec.config.match, scope, 'match');
      return {
        kind: 'event',
        event: String(spec.config.event),
        key: key === null ? null : String(key),
        timeoutAt: timeoutAt(spec, now),
      };
    }
    case 'approval': {
      const approvers = Array.isArray(spec.config.approvers) ? spec.config.approvers.map(String) : [];
      return { kind: 'approval', timeoutAt: timeoutAt(spec, now), approvers };
    }
    default:
      throw new BatonError('DEF_INVALID', `task ${spec.id}: kind ${spec.kind} does not park`);
  }
}
