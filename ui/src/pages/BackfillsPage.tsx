/** Backfills: their progress and actions, and a form to plan and start one. */
import { useState } from 'react';
import { Link } from 'react-router';
import { api, ApiError } from '../api/client';
import type { Backfill, BackfillPlan } from '../api/types';
import { ApiErrorBox, PageHead, StateBadge, Time } from '../components/bits';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { shellQuote } from '../lib/cli';
import { useApi, useNow } from '../lib/use-api';

function Progress({ b }: { b: Backfill }) {
  const { done, failed, running, pending } = b.progress;
  const total = Math.max(1, done + failed + running + pending);
  const seg = (n: number, state: string) =>
    n > 0 ? (
      <span className="seg" style={{ width: `${(n / total) * 100}%`, ['--c' as string]: `var(--st-${state})` }} />
    ) : null;
  return (
    <span className="progress" title={`${done} done, ${failed} failed, ${running} running, ${pending} pending`}>
      {seg(done, 'succeeded')}
      {seg(failed, 'failed')}
      {seg(running, 'running')}
      {seg(pending, 'pending')}
    </span>
  );
}

export function BackfillsPage() {
  const backfills = useApi('backfills', (signal) => api.backfills({ limit: 200 }, signal));
  const now = useNow(10_000);
  const [action, setAction] = useState<{ b: Backfill; verb: 'pause' | 'resume' | 'cancel' } | null>(null);
  const [form, setForm] = useState({ flow: '', trigger: '', from: '', to: '', max_parallel: '' });
  const [plan, setPlan] = useState<BackfillPlan | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [creating, setCreating] = useState(false);

  const body = () => ({
    flow: form.flow,
    ...(form.trigger ? { trigger: form.trigger } : {}),
    from: new Date(form.from).toISOString(),
    to: new Date(form.to).toISOString(),
  });
  const doPlan = async () => {
    setError(null);
    try {
      setPlan(await api.planBackfill(body()));
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'UNKNOWN', String(e), null, null));
    }
  };
  const cliCreate = `baton backfill ${shellQuote(form.flow || '<flow>')}${form.trigger ? ` --trigger ${shellQuote(form.trigger)}` : ''} --from ${form.from || '<from>'} --to ${form.to || '<to>'}${form.max_parallel ? ` --max-parallel ${form.max_parallel}` : ''}`;

  return (
    <div>
      <PageHead title="Backfills" />
      <ApiErrorBox error={backfills.error} />
      <table className="table">
        <thead>
          <tr>
            <th>id</th>
            <th>flow</th>
            <th>trigger</th>
            <th>state</th>
            <th>interval</th>
            <th>progress</th>
            <th>created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(backfills.data?.items ?? []).map((b) => (
            <tr key={b.id}>
              <td>
                <Link to={`/runs?flow=${encodeURIComponent(b.flow)}&trigger=${encodeURIComponent(b.trigger)}`}>
                  {b.id}
                </Link>
              </td>
              <td>{b.flow}</td>
              <td>{b.trigger}</td>
              <td>
                <StateBadge state={b.state} />
              </td>
              <td className="small">
                <Time iso={b.from} now={now} absolute /> → <Time iso={b.to} now={now} absolute />
              </td>
              <td>
                <Progress b={b} />{' '}
                <span className="small muted">
                  {b.progress.done}/{b.progress.done + b.progress.failed + b.progress.running + b.progress.pending}
                </span>
              </td>
              <td>
                <Time iso={b.created_at} now={now} />
              </td>
              <td className="actions">
                {(['pause', 'resume', 'cancel'] as const).map((verb) => (
                  <button
                    key={verb}
                    type="button"
                    onClick={() => setAction({ b, verb })}
                    className={verb === 'cancel' ? 'danger' : ''}
                  >
                    {verb}
                  </button>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {backfills.data && backfills.data.items.length === 0 ? <p className="muted">No backfills yet.</p> : null}

      <h2>New backfill</h2>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void doPlan();
        }}
      >
        <input
          required
          placeholder="flow"
          aria-label="Flow"
          value={form.flow}
          onChange={(e) => setForm({ ...form, flow: e.target.value })}
        />
        <input
          placeholder="trigger (optional)"
          aria-label="Trigger"
          value={form.trigger}
          onChange={(e) => setForm({ ...form, trigger: e.target.value })}
        />
        <label>
          from{' '}
          <input
            required
            type="datetime-local"
            value={form.from}
            onChange={(e) => setForm({ ...form, from: e.target.value })}
          />
        </label>
        <label>
          to{' '}
          <input
            required
            type="datetime-local"
            value={form.to}
            onChange={(e) => setForm({ ...form, to: e.target.value })}
          />
        </label>
        <input
          placeholder="max parallel"
          aria-label="Max parallel"
          type="number"
          min={1}
          value={form.max_parallel}
          onChange={(e) => setForm({ ...form, max_parallel: e.target.value })}
        />
        <button type="submit">Plan</button>
      </form>
      <ApiErrorBox error={error} />
      {plan ? (
        <>
          <p>
            {plan.intervals.length} intervals.{' '}
            <button type="button" className="primary" onClick={() => setCreating(true)}>
              Start backfill
            </button>
          </p>
          <table className="table">
            <tbody>
              {plan.intervals.slice(0, 200).map((i) => (
                <tr key={i.key}>
                  <td>
                    <code>{i.key}</code>
                  </td>
                  <td>
                    <Time iso={i.fire_at} now={now} absolute />
                  </td>
                  <td>{i.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {creating ? (
        <ConfirmDialog
          title={`Backfill ${form.flow}?`}
          command={cliCreate}
          confirmLabel="Start backfill"
          onConfirm={() =>
            api.createBackfill({ ...body(), ...(form.max_parallel ? { max_parallel: Number(form.max_parallel) } : {}) })
          }
          onClose={(done) => {
            setCreating(false);
            if (done) {
              setPlan(null);
              backfills.reload();
            }
          }}
        >
          <p>{plan?.intervals.length ?? 0} runs will be created.</p>
        </ConfirmDialog>
      ) : null}
      {action ? (
        <ConfirmDialog
          title={`${action.verb} backfill ${action.b.id}?`}
          command={`baton backfill ${action.verb} ${shellQuote(action.b.id)}`}
          confirmLabel={action.verb}
          danger={action.verb === 'cancel'}
          onConfirm={() => api.backfillAction(action.b.id, action.verb)}
          onClose={(done) => {
            setAction(null);
            if (done) backfills.reload();
          }}
        />
      ) : null}
    </div>
  );
}
