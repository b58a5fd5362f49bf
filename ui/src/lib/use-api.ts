import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '../api/client';

/** The state of one API read: its data, its error and a way to read again. */
export interface ApiRead<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
  /** Replaces the data locally (a live event applied without a new read). */
  setData: React.Dispatch<React.SetStateAction<T | null>>;
}

/**
 * Reads from the API when `key` changes, aborting the read in flight. `load` may change
 * on each render; only `key` decides when to read again. With `enabled` false nothing is
 * read (e.g. until what the read needs is known).
 */
export function useApi<T>(key: string, load: (signal: AbortSignal) => Promise<T>, enabled = true): ApiRead<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    setLoading(true);
    loadRef.current(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (controller.signal.aborted) return;
        setError(e instanceof ApiError ? e : new ApiError(0, 'UNKNOWN', String(e), null, null));
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [key, generation, enabled]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { data, error, loading, reload, setData };
}

/** The current time, refreshed every `everyMs` so that running durations tick. */
export function useNow(everyMs = 1000, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs, active]);
  return now;
}
