/**
 * Live updates from the server's event stream (`/api/v1/events`), and whether the
 * connection is up. EventSource reconnects by itself and resends Last-Event-ID, so the
 * server replays what was missed; this module only reports the connection's state.
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import { API_BASE, queryString } from '../api/client';
import type { LogEvent, Run, TaskEvent } from '../api/types';

type ConnectionState = 'idle' | 'open' | 'lost';

let connectionState: ConnectionState = 'idle';
const listeners = new Set<() => void>();

function setConnectionState(next: ConnectionState): void {
  if (next === connectionState) return;
  connectionState = next;
  for (const l of listeners) l();
}

/** Whether the live connection is up (`open`), down and retrying (`lost`), or unused (`idle`). */
export function useConnectionState(): ConnectionState {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => connectionState,
  );
}

/** Handlers of the events of the stream; each is optional. */
export interface EventHandlers {
  onRun?: (run: Run) => void;
  onTask?: (event: TaskEvent) => void;
  onLog?: (event: LogEvent) => void;
  /** Called each time the stream opens (the first time too), to read again what it cannot replay. */
  onOpen?: () => void;
}

function parse<T>(e: MessageEvent): T | null {
  try {
    return JSON.parse(String(e.data)) as T;
  } catch {
    return null;
  }
}

const RETRY_MS = 3000;

/**
 * Subscribes to the events of one run or one flow (or all, with neither) while mounted.
 * Pass `enabled: false` to stay off (e.g. once a run has ended).
 */
export function useLiveEvents(filter: { run?: string; flow?: string }, handlers: EventHandlers, enabled = true): void {
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  const url = `${API_BASE}/events${queryString({ run: filter.run, flow: filter.flow })}`;

  useEffect(() => {
    if (!enabled || typeof EventSource === 'undefined') return;
    let source: EventSource | null = null;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;

    const connect = () => {
      source = new EventSource(url);
      source.onopen = () => {
        setConnectionState('open');
        // What changed before the stream opened (between the page's first read and now, or
        // while it was down) is not in it: read it again. Both reads overlap, so nothing
        // falls between them.
        handlersRef.current.onOpen?.();
      };
      source.onerror = () => {
        setConnectionState('lost');
        // EventSource retries by itself while CONNECTING; once CLOSED (e.g. a 5xx) it
        // gives up, so open a new one after a pause.
        if (source?.readyState === EventSource.CLOSED && !closed) {
          source.close();
          retryTimer = setTimeout(connect, RETRY_MS);
        }
      };
      source.addEventListener('run', (e) => {
        const run = parse<Run>(e);
        if (run) handlersRef.current.onRun?.(run);
      });
      source.addEventListener('task', (e) => {
        const task = parse<TaskEvent>(e);
        if (task) handlersRef.current.onTask?.(task);
      });
      source.addEventListener('log', (e) => {
        const line = parse<LogEvent>(e);
        if (line) handlersRef.current.onLog?.(line);
      });
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retryTimer);
      source?.close();
      setConnectionState('idle');
    };
  }, [url, enabled]);
}
