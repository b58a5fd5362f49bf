/** The buttons acting on a run or one of its tasks, each behind a confirmation showing the CLI command. */
import { useState } from 'react';
import { api } from '../api/client';
import type { Run, TaskRun } from '../api/types';
import { cliCommand, type RunAction } from '../lib/cli';
import { TERMINAL_RUN } from '../lib/states';
import { ConfirmDialog } from './ConfirmDialog';

type Open = 'cancel' | 'retry-failed' | 'retry-from' | 'resume' | 'approve' | 'reject' | 'signal' | null;

/** Whether a waiting task waits for a human decision. */
export function waitsForApproval(task: TaskRun | null | undefined): boolean {
  if (!task || task.state !== 'waiting' || !task.wait) return false;
  const kind = task.wait.kind ?? task.wait.type;
  return kind === 'approval' || 'approvers' in task.wait;
}

/**
 * The action bar of a run (cancel, retry failed, resume, send event) or, given `task`, of
 * one of its tasks (retry from here, approve, reject).
 */
export function RunActions({ run, task, onDone }: { run: Run; task?: TaskRun | null; onDone: () => void }) {
  const forRun = !task;
  const [open, setOpen] = useState<Open>(null);
  const [reason, setReason] = useState('');
  const [by, setBy] = useState('');
  const [comment, setComment] = useState('');
  const [event, setEvent] = useState('');
  const [payload, setPayload] = useState('');
  const terminal = TERMINAL_RUN.has(run.state);
  const approval = waitsForApproval(task);

  const close = (done: boolean) => {
    setOpen(null);
    if (done) onDone();
  };

  const dialog = () => {
    if (open === null) return null;
    const common = { onClose: close };
    const action = (a: RunAction) => cliCommand(a);
    switch (open) {
      case 'cancel':
        return (
          <ConfirmDialog
            {...common}
            title={`Cancel run ${run.id}?`}
            command={action({ kind: 'cancel', run: run.id })}
            confirmLabel="Cancel run"
            danger
            onConfirm={() => api.cancel(run.id, reason || undefined)}
          >
            <p>Running commands are killed; tasks not yet run will not run.</p>
            <label className="field">
              Reason (optional)
              <input value={reason} onChange={(e) => setReason(e.target.value)} />
            </label>
          </ConfirmDialog>
        );
      case 'retry-failed':
        return (
          <ConfirmDialog
            {...common}
            title={`Retry the failed tasks of ${run.id}?`}
            command={action({ kind: 'retry-failed', run: run.id })}
            confirmLabel="Retry failed"
            onConfirm={() => api.retry(run.id, { failed: true })}
          >
            <p>Every task that did not succeed runs again; succeeded tasks keep their outputs.</p>
          </ConfirmDialog>
        );
      case 'retry-from':
        return task ? (
          <ConfirmDialog
            {...common}
            title={`Retry from ${task.id}?`}
            command={action({ kind: 'retry-from', run: run.id, task: task.id })}
            confirmLabel="Retry from here"
            danger
            onConfirm={() => api.retry(run.id, { from: task.id })}
          >
            <p>
              <code>{task.id}</code> and everything downstream of it run again; their earlier results are replaced.
            </p>
          </ConfirmDialog>
        ) : null;
      case 'resume':
        return (
          <ConfirmDialog
            {...common}
            title={`Resume run ${run.id}?`}
            command={action({ kind: 'resume', run: run.id })}
            confirmLabel="Resume"
            onConfirm={() => api.resume(run.id)}
          >
            <p>The run goes on from where it stopped.</p>
          </ConfirmDialog>
        );
      case 'approve':
      case 'reject':
        return task ? (
          <ConfirmDialog
            {...common}
            title={`${open === 'approve' ? 'Approve' : 'Reject'} ${task.id}?`}
            command={action({
              kind: open,
              run: run.id,
              task: task.id,
              by: by || undefined,
              comment: comment || undefined,
            })}
            confirmLabel={open === 'approve' ? 'Approve' : 'Reject'}
            danger={open === 'reject'}
            onConfirm={() =>
              (open === 'approve' ? api.approve : api.reject)(run.id, {
                task: task.id,
                by: by || 'ui',
                ...(comment ? { comment } : {}),
              })
            }
          >
            <label className="field">
              By
              <input
                value={by}
                onChange={(e) => setBy(e.target.value)}
                placeholder="your name"
                required
                data-testid="approval-by"
              />
            </label>
            <label className="field">
              Comment
              <input value={comment} onChange={(e) => setComment(e.target.value)} />
            </label>
          </ConfirmDialog>
        ) : null;
      case 'signal': {
        let parsed: unknown = undefined;
        let payloadError: string | null = null;
        if (payload.trim()) {
          try {
            parsed = JSON.parse(payload);
          } catch {
            payloadError = 'The payload is not valid JSON.';
          }
        }
        return (
          <ConfirmDialog
            {...common}
            title={`Send an event to ${run.id}`}
            command={action({
              kind: 'signal',
              run: run.id,
              event: event || '<event>',
              payload: payload.trim() || undefined,
            })}
            confirmLabel="Send"
            onConfirm={async () => {
              if (!event) throw new Error('Name the event.');
              if (payloadError) throw new Error(payloadError);
              return api.signal(run.id, {
                event,
                ...(parsed !== undefined ? { payload: parsed } : {}),
                ...(task && task.state === 'waiting' ? { task: task.id } : {}),
              });
            }}
          >
            <label className="field">
              Event
              <input value={event} onChange={(e) => setEvent(e.target.value)} required data-testid="signal-event" />
            </label>
            <label className="field">
              Payload (JSON, optional)
              <textarea value={payload} onChange={(e) => setPayload(e.target.value)} rows={4} />
            </label>
            {payloadError ? <div className="error-box">{payloadError}</div> : null}
          </ConfirmDialog>
        );
      }
    }
  };

  return (
    <div className="actions">
      {forRun && !terminal ? (
        <button type="button" className="danger" data-testid="action-cancel" onClick={() => setOpen('cancel')}>
          Cancel
        </button>
      ) : null}
      {forRun && (run.state === 'failed' || run.state === 'cancelled') ? (
        <button type="button" data-testid="action-retry" onClick={() => setOpen('retry-failed')}>
          Retry failed
        </button>
      ) : null}
      {task && terminal ? (
        <button type="button" data-testid="action-retry-from" onClick={() => setOpen('retry-from')}>
          Retry from {task.id}
        </button>
      ) : null}
      {forRun && run.state !== 'succeeded' ? (
        <button type="button" data-testid="action-resume" onClick={() => setOpen('resume')}>
          Resume
        </button>
      ) : null}
      {approval ? (
        <>
          <button type="button" className="primary" data-testid="action-approve" onClick={() => setOpen('approve')}>
            Approve
          </button>
          <button type="button" className="danger" data-testid="action-reject" onClick={() => setOpen('reject')}>
            Reject
          </button>
        </>
      ) : null}
      {forRun && !terminal ? (
        <button type="button" data-testid="action-signal" onClick={() => setOpen('signal')}>
          Send event
        </button>
      ) : null}
      {dialog()}
    </div>
  );
}
