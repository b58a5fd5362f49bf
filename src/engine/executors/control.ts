/**
 * Control tasks whose decision is user code: a choice that selects its branches with a
 * function, and a race that scores its finished branches with one. Both run like
 * function tasks (in a worker, with retries and timeouts); the run machine applies what
 * they return (skips the branches not taken; names the winner and records the losers).
 */
import { BatonError } from '../../core/errors.js';
import type { AttemptRequest, TaskExecutor } from '../executor.js';
import { functionExecutor } from './function.js';

export const choiceExecutor: TaskExecutor = {
  kind: 'choice',
  async execute(request: AttemptRequest): Promise<unknown> {
    const { task } = request;
    const targets = task.choice?.targets ?? [];
    const returned = await functionExecutor.execute(request);
    const selected = (Array.isArray(returned) ? returned : [returned]).map((v) => {
      if (typeof v !== 'string' || !targets.includes(v)) {
        throw new BatonError(
          'TASK_OUTPUT_INVALID',
          `choice ${task.id} selected ${JSON.stringify(v)}, which is not one of its branches`,
          { hint: `Return one or more of: ${targets.join(', ')}.` },
        );
      }
      return v;
    });
    return { selected };
  },
};

type ScoreFunction = (output: unknown, branch: string) => unknown;

export const raceExecutor: TaskExecutor = {
  kind: 'race',
  async execute(request: AttemptRequest): Promise<unknown> {
    const { task, context } = request;
    const score = request.resolveFunction(task.key ?? task.id) as unknown as ScoreFunction | undefined;
    if (!score) {
      throw new BatonError('DEF_LOAD', `race ${task.id} has no scoring function`, {
        hint: 'Pass a scoring function to f.race(), or drop `score` and use `priority`.',
      });
    }
    const scores: Record<string, number> = {};
    let winner: string | null = null;
    for (const branch of task.race?.branches ?? []) {
      if (!(branch in context.upstream)) continue;
      const value = Number(await score(context.upstream[branch], branch));
      if (!Number.isFinite(value)) {
        throw new BatonError('TASK_OUTPUT_INVALID', `race ${task.id}: the score of ${branch} is not a number`);
      }
      scores[branch] = value;
      if (winner === null || value > (scores[winner] as number)) winner = branch;
    }
    if (winner === null) {
      throw new BatonError('RACE_NO_WINNER', `no branch of race ${task.id} succeeded`);
    }
    return { winner, output: context.upstream[winner], scores };
  },
};
