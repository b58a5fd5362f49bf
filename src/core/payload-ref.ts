/**
 * Outputs stored by reference. An output whose JSON is over `limits.output_bytes` is written
 * to the data namespace (its payload), and the run's history keeps this small marker in
 * its place, so that no output makes the database grow by its size. Task bodies and input
 * templates receive the value itself: the attempt runner reads the payload back before a
 * downstream body starts. Expressions the engine evaluates itself (a map's `over`, a
 * choice's rules) see the marker, and say so when they needed the value.
 */

/** The key of the marker object: `{ "$baton_payload": { path, bytes, sha256 } }`. */
export const PAYLOAD_KEY = '$baton_payload';

export interface PayloadRef {
  readonly [PAYLOAD_KEY]: {
    /** The data path of the payload (JSON). */
    readonly path: string;
    /** Bytes of its JSON. */
    readonly bytes: number;
    /** SHA-256 of its JSON, hex: a payload read back is checked against it. */
    readonly sha256: string;
  };
}

/** Whether an output is the marker of a payload stored by reference. */
export function isPayloadRef(value: unknown): value is PayloadRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== PAYLOAD_KEY) return false;
  const ref = (value as Record<string, unknown>)[PAYLOAD_KEY] as Record<string, unknown> | null;
  return (
    typeof ref === 'object' &&
    ref !== null &&
    typeof ref.path === 'string' &&
    typeof ref.bytes === 'number' &&
    typeof ref.sha256 === 'string'
  );
}

/** Who stores a payload: the attempt whose output it is. */
export interface PayloadOwner {
  readonly runId: string;
  /** The task run's id (a map instance's id includes its index). */
  readonly taskId: string;
  readonly attempt: number;
}

/** Where payloads go and come from (data/payloads.ts, over the data namespace). */
export interface PayloadStore {
  /** Stores an output's JSON atomically and returns its marker. */
  store(owner: PayloadOwner, json: string): Promise<PayloadRef>;
  /** The value behind a marker; DATA_NOT_FOUND when its payload is gone. */
  load(ref: PayloadRef): Promise<unknown>;
}
