import { useEffect } from 'react';
import { stateLook } from './states';

const COLORS: Record<string, string> = {
  succeeded: '#2e9e44',
  failed: '#d43c3c',
  running: '#2f74d0',
  retrying: '#d9911a',
  queued: '#7d8fa8',
  waiting: '#7d8fa8',
  cancelled: '#555',
};

/** Colours the favicon by a run's state (same colours as everywhere), and names it in the title. */
export function useStateFavicon(state: string | null): void {
  useEffect(() => {
    const color = (state && COLORS[state]) ?? '#888';
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="${color}"/></svg>`;
    let link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
    if (!link) {
      link = document.createElement('link');
      link.rel = 'icon';
      document.head.appendChild(link);
    }
    link.href = `data:image/svg+xml,${encodeURIComponent(svg)}`;
    const previous = document.title;
    if (state) document.title = `${stateLook(state).icon} ${state} · Baton`;
    return () => {
      document.title = previous;
    };
  }, [state]);
}
