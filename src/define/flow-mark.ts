/**
 * The brand of a flow made by `defineFlow`. A registered symbol, so that flows built by
 * another loaded copy of Baton (a flow file importing its own) are recognized too, and a
 * module of its own, so that recognizing a flow does not load the builder's schemas.
 */
export const FLOW_MARK: unique symbol = Symbol.for('baton.flow') as never;

/** True for what `defineFlow` returns. */
export function isFlowDefinitionLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FLOW_MARK] === true;
}
