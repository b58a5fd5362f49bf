/**
 * Baton's public API: for flow authors, the flow builder, the options of its task methods,
 * and the types a task sees; for programs, the client (`openClient`, docs/api.md) that
 * starts runs, awaits them and executes them in process. The testing kit is a separate
 * entry point, `baton-orchestrator/testing`.
 */
export { defineFlow, FlowDefinition } from './define/builder.js';
export type {
  ApprovalOptions,
  AssetCheckInput,
  AssetDeclaration,
  BaseTaskOptions,
  BranchOutput,
  ChoiceFunctionOptions,
  ChoiceRule,
  ChoiceRulesOptions,
  CommonTaskOptions,
  DurationInput,
  FlowOptions,
  FlowTaskContext,
  FunctionTaskOptions,
  HandlerContext,
  ItemOf,
  MapGroupOptions,
  MapItemContext,
  MapOverOptions,
  MapTaskOptions,
  OnFailureInput,
  ParamDef,
  ParamValues,
  ParkingTaskOptions,
  RaceOptions,
  RaceResult,
  RaceScoreFunction,
  RetryInput,
  ShellBody,
  ShellTaskOptions,
  SleepOptions,
  SqlInputOption,
  SqlTaskOptions,
  SubflowOptions,
  TaskBuilder,
  TaskContext,
  TaskRef,
  TriggerInput,
  TriggerRuleInput,
  Upstream,
  WaitForEventOptions,
  WaitUntilOptions,
} from './define/builder.js';
export type { AttemptContext, DataObjectInfo, DatabaseConnection, TaskData, TaskLogger } from './core/task-context.js';
export type { ErrorKind, TaskError } from './core/model.js';
export { BatonError, ERROR_CODES } from './core/errors.js';
export { TaskFailure } from './core/task-failure.js';
export type { TaskFailureOptions } from './core/task-failure.js';
export type { ErrorCode } from './core/errors.js';
export { openClient } from './client/index.js';
export type {
  AssetCheckResult,
  AssetDetail,
  AssetInfo,
  AssetLink,
  AssetMaterializationRecord,
  RunAssetInfo,
  BatonApi,
  BatonClient,
  BatonRemoteClient,
  CancelOptions,
  ClientOptions,
  DecisionOptions,
  DecisionOutcome,
  FlowInput,
  ListOptions,
  ParamInput,
  RemoteClientOptions,
  RetryOptions,
  RunEventRecord,
  RunHandle,
  RunInfo,
  RunOutputs,
  SignalOptions,
  SignalOutcome,
  StartManyInput,
  StartOptions,
  TaskRunInfo,
  WaitOptions,
  Worker,
  WorkerOptions,
} from './client/index.js';
export type { RunEvent } from './core/run-machine.js';
export type { RunStateName, TaskStateName } from './core/states.js';
