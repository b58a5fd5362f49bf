import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from '../api/client';
import { ApiErrorBox } from './bits';

/** A dialog that asks before an action and shows the CLI command doing the same. */
export function ConfirmDialog(props: {
  title: string;
  /** The equivalent `baton` command line. */
  command: string;
  confirmLabel: string;
  danger?: boolean;
  children?: ReactNode;
  onConfirm: () => Promise<unknown>;
  onClose: (done: boolean) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  // The dialog's close event reports the outcome, whichever way it was closed.
  const done = useRef(false);
  const { onClose } = props;

  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      done.current = true;
      ref.current?.close();
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'UNKNOWN', String(e), null, null));
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} className="dialog" onClose={() => onClose(done.current)} aria-labelledby="dialog-title">
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          void confirm();
        }}
      >
        <h2 id="dialog-title">{props.title}</h2>
        {props.children}
        <div className="cli">
          <span className="muted">CLI:</span> <code data-testid="cli-command">{props.command}</code>
          <button
            type="button"
            className="link"
            onClick={() => void navigator.clipboard?.writeText(props.command)}
            title="Copy the command"
          >
            copy
          </button>
        </div>
        <ApiErrorBox error={error} />
        <div className="dialog-buttons">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" className={props.danger ? 'danger' : 'primary'} data-testid="confirm" disabled={busy}>
            {busy ? '…' : props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
