/** Starts a run of a flow with params from a form generated from the flow's params schema. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate } from 'react-router';
import { api, ApiError } from '../api/client';
import type { JsonSchema } from '../api/types';
import { cliCommand } from '../lib/cli';
import { collectParams, paramFields } from '../lib/params-form';
import { ApiErrorBox } from './bits';

export function StartRunDialog({ flow, schema, onClose }: { flow: string; schema: JsonSchema; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const navigate = useNavigate();
  const fields = useMemo(() => paramFields(schema), [schema]);
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(fields.map((f) => [f.name, f.initial])),
  );
  const [dedupeKey, setDedupeKey] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const { params, problems } = collectParams(fields, values);
  const [touched, setTouched] = useState(false);

  useEffect(() => {
    if (ref.current && !ref.current.open) ref.current.showModal();
  }, []);

  const submit = async () => {
    setTouched(true);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    setError(null);
    try {
      const res = await api.startRun(flow, { params, ...(dedupeKey ? { dedupe_key: dedupeKey } : {}) });
      ref.current?.close();
      navigate(`/runs/${encodeURIComponent(res.id)}`);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'UNKNOWN', String(e), null, null));
    } finally {
      setBusy(false);
    }
  };

  // Server-side refusals (422 PARAMS_INVALID) may name fields in details.
  const serverProblems = (error?.details?.issues ?? null) as { path?: unknown[]; message?: string }[] | null;

  return (
    <dialog ref={ref} className="dialog" onClose={onClose} aria-labelledby="start-title">
      <form
        data-testid="params-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <h2 id="start-title">Start a run of {flow}</h2>
        {fields.length === 0 ? <p className="muted">This flow takes no params.</p> : null}
        {fields.map((f) => (
          <label key={f.name} className="field">
            <span>
              {f.title}
              {f.required ? <span className="bad"> *</span> : null}
              {f.title !== f.name ? <code className="muted small"> {f.name}</code> : null}
            </span>
            {f.kind === 'boolean' ? (
              <input
                type="checkbox"
                name={f.name}
                data-testid={`param-${f.name}`}
                checked={values[f.name] === 'true'}
                onChange={(e) => setValues({ ...values, [f.name]: String(e.target.checked) })}
              />
            ) : f.kind === 'enum' ? (
              <select
                name={f.name}
                data-testid={`param-${f.name}`}
                value={values[f.name] ?? ''}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
              >
                <option value="">–</option>
                {f.options.map((o) => (
                  <option key={JSON.stringify(o)} value={JSON.stringify(o)}>
                    {String(o)}
                  </option>
                ))}
              </select>
            ) : f.kind === 'json' ? (
              <textarea
                name={f.name}
                data-testid={`param-${f.name}`}
                rows={3}
                value={values[f.name] ?? ''}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
                placeholder="JSON"
              />
            ) : (
              <input
                name={f.name}
                data-testid={`param-${f.name}`}
                type={f.kind === 'text' ? 'text' : 'number'}
                step={f.kind === 'integer' ? 1 : 'any'}
                value={values[f.name] ?? ''}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
              />
            )}
            {f.description ? <span className="muted small">{f.description}</span> : null}
            {touched && problems[f.name] ? <span className="bad small">{problems[f.name]}</span> : null}
          </label>
        ))}
        <label className="field">
          Dedupe key (optional)
          <input value={dedupeKey} onChange={(e) => setDedupeKey(e.target.value)} />
        </label>
        <div className="cli">
          <span className="muted">CLI:</span>{' '}
          <code data-testid="cli-command">{cliCommand({ kind: 'start', flow, params })}</code>
        </div>
        <ApiErrorBox error={error} />
        {serverProblems ? (
          <ul className="bad small">
            {serverProblems.map((p, i) => (
              <li key={i}>
                {Array.isArray(p.path) ? p.path.join('.') : ''} {p.message}
              </li>
            ))}
          </ul>
        ) : null}
        <div className="dialog-buttons">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" className="primary" data-testid="params-submit" disabled={busy}>
            {busy ? 'Starting…' : 'Start run'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
