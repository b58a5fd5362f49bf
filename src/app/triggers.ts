/**
 * Use cases on triggers: list them, find one by id or name, pause and resume it, read its
 * history. Faces call these instead of the store.
 */
import { BatonError } from '../core/errors.js';
import type { FiringRecord, TriggerRecord } from '../store/store.js';
import type { Runtime } from './runtime.js';

/** Every trigger the store knows, in the order the store lists them. */
export async function listTriggers(rt: Runtime): Promise<TriggerRecord[]> {
  return rt.store.listTriggers();
}

/**
 * The trigger a reference names: its full id (`<flow>/<trigger>`) or its name when only one
 * trigger has it. FLOW_NOT_FOUND when none matches; USAGE when a name is shared.
 */
export async function findTrigger(rt: Runtime, ref: string): Promise<TriggerRecord> {
  const known = await rt.store.listTriggers();
  const match = known.filter((t) => t.id === ref || t.name === ref);
  const only = match.length === 1 ? match[0] : match.find((t) => t.id === ref);
  if (only) return only;
  throw new BatonError(
    match.length === 0 ? 'FLOW_NOT_FOUND' : 'USAGE',
    `${match.length === 0 ? 'no' : 'several'} trigger(s) named ${ref}`,
    {
      hint: `Triggers: ${known.map((t) => t.id).join(', ') || 'none'}. Use the full id <flow>/<trigger>.`,
    },
  );
}

/** Pauses (no new runs from it) or resumes a trigger; returns its record as it now is. */
export async function setTriggerPaused(rt: Runtime, ref: string, paused: boolean): Promise<TriggerRecord> {
  const trigger = await findTrigger(rt, ref);
  await rt.store.setTriggerPaused(trigger.id, paused);
  return { ...trigger, paused };
}

/** A trigger's most recent firings, newest first. */
export async function triggerHistory(rt: Runtime, ref: string, limit = 50): Promise<FiringRecord[]> {
  const trigger = await findTrigger(rt, ref);
  return rt.store.listFirings(trigger.id, limit);
}
