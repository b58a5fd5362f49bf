/**
 * The UI's view of the API checked against the server's schemas at compile time: every
 * response the server can send (the types its zod schemas infer, src/server/schemas.ts)
 * must be assignable to the type the UI reads it as. A server change the UI does not
 * follow fails `npm run typecheck`. Type-only: nothing of it reaches the bundle.
 */
import type * as Server from '../../../src/server/schemas';
import type * as Ui from './types';

/** `true` when every value of `From` is a `To`. */
type Fits<From, To> = [From] extends [To] ? true : false;

/** Each entry must be `true`; a `false` names the shape that drifted. */
export type SchemaFits = [
  Fits<Server.Run, Ui.Run>,
  Fits<Server.TaskRun, Ui.TaskRun>,
  Fits<Server.RunDetail, Ui.RunDetail>,
  Fits<Server.TaskDetail, Ui.TaskDetail>,
  Fits<Server.AttemptInfo, Ui.AttemptInfo>,
  Fits<Server.HistoryEvent, Ui.HistoryEvent>,
  Fits<Server.LogLine, Ui.LogLine>,
  Fits<Server.FlowSummary, Ui.FlowSummary>,
  Fits<Server.FlowDetail, Ui.FlowDetail>,
  Fits<Server.GraphNode, Ui.GraphNode>,
  Fits<Server.Trigger, Ui.Trigger>,
  Fits<Server.Firing, Ui.Firing>,
  Fits<Server.Backfill, Ui.Backfill>,
  Fits<Server.Asset, Ui.Asset>,
  Fits<Server.AssetDetail, Ui.AssetDetail>,
  Fits<Server.Check, Ui.Check>,
  Fits<Server.Health, Ui.Health>,
  Fits<Server.StartRunResult, Ui.StartRunResult>,
  Fits<Server.ErrorBody, Ui.ApiErrorBody>,
  Fits<Server.RunAsset, Ui.RunAsset>,
  Fits<Server.AssetVersion, Ui.AssetVersion>,
  Fits<Server.AssetLink, Ui.AssetLink>,
  // The other way for what the UI sends: its bodies must be what the server accepts.
  Fits<Ui.StartRunBody, Server.StartRunBody>,
];

export const schemaFits: SchemaFits = [
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
];
