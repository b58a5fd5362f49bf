/**
 * What a task declares about assets: the assets it produces (a key, the data path where it
 * lives, and the checks each materialization must pass) and the assets it consumes. Pure
 * data, normalized from YAML and from the TypeScript builder alike (define/asset-schema.ts),
 * carried out after the body by data/assets/.
 */

/** Asset keys: letters, digits, `_ - . /`, starting with a letter, digit or `_`. */
export const ASSET_KEY_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$/;

/** The check types, as written in a flow. */
export const CHECK_KINDS = [
  'not_null',
  'unique',
  'accepted_values',
  'range',
  'row_count',
  'freshness',
  'schema',
  'references',
  'sql',
] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

export const CHECK_SEVERITIES = ['error', 'warn'] as const;
/** `error` fails the attempt (CHECK_FAILED); `warn` is recorded and the task goes on. */
export type CheckSeverity = (typeof CHECK_SEVERITIES)[number];

interface CheckBase {
  /** Unique among the asset's checks: declared, or made from the check (`unique(order_id)`). */
  readonly name: string;
  readonly severity: CheckSeverity;
}

export type AssetCheckSpec = CheckBase &
  (
    | { readonly kind: 'not_null'; readonly columns: readonly string[] }
    | { readonly kind: 'unique'; readonly columns: readonly string[] }
    | {
        readonly kind: 'accepted_values';
        readonly column: string;
        readonly values: readonly (string | number | boolean)[];
      }
    | { readonly kind: 'range'; readonly column: string; readonly min: number | null; readonly max: number | null }
    | { readonly kind: 'row_count'; readonly min: number | null; readonly max: number | null }
    | { readonly kind: 'freshness'; readonly column: string; readonly maxAgeMs: number }
    | { readonly kind: 'schema'; readonly columns: Readonly<Record<string, string>> }
    | {
        readonly kind: 'references';
        readonly column: string;
        readonly asset: string;
        readonly columnInAsset: string;
      }
    | { readonly kind: 'sql'; readonly sql: string }
  );

/** An asset a task produces. */
export interface AssetSpec {
  readonly key: string;
  /** Where it lives: a `data://<mount>/<key>` path. */
  readonly path: string;
  readonly checks: readonly AssetCheckSpec[];
}
