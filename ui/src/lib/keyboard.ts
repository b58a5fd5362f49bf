import { useEffect, useRef } from 'react';

/** Whether a key event was typed into a field, where shortcuts must not fire. */
function isTyping(e: KeyboardEvent): boolean {
  const t = e.target;
  if (!(t instanceof HTMLElement)) return false;
  return t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName);
}

/**
 * The global shortcuts: `/` focuses the page's search field (`[data-search]`), `g` then
 * a letter goes to a page (`g r` runs, `g h` home, `g t` triggers, `g a` assets, `g b` backfills).
 */
export function useGlobalShortcuts(navigate: (to: string) => void): void {
  const pendingG = useRef(0);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || isTyping(e)) return;
      if (e.key === '/') {
        const search = document.querySelector<HTMLInputElement>('[data-search]');
        if (search) {
          e.preventDefault();
          search.focus();
          search.select();
        }
        return;
      }
      if (e.key === 'g') {
        pendingG.current = Date.now();
        return;
      }
      if (Date.now() - pendingG.current < 1500) {
        pendingG.current = 0;
        const to = { r: '/runs', h: '/', t: '/triggers', a: '/assets', b: '/backfills' }[e.key];
        if (to) {
          e.preventDefault();
          navigate(to);
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [navigate]);
}

/**
 * `j`/`k` move through a list of `count` rows; Enter opens the current one. The caller
 * keeps the index, scrolls to it and highlights it.
 */
export function useListKeys(
  count: number,
  index: number,
  setIndex: (i: number) => void,
  onOpen?: (i: number) => void,
): void {
  const state = useRef({ count, index, setIndex, onOpen });
  state.current = { count, index, setIndex, onOpen };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || isTyping(e)) return;
      const s = state.current;
      if (s.count === 0) return;
      if (e.key === 'j') s.setIndex(Math.min(s.count - 1, s.index + 1));
      else if (e.key === 'k') s.setIndex(Math.max(0, s.index - 1));
      else if (e.key === 'Enter' && s.index >= 0 && document.activeElement === document.body) s.onOpen?.(s.index);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}
