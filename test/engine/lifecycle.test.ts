import { describe, expect, it } from 'vitest';
import { EngineLifecycle } from '../../src/engine/lifecycle.js';
import type { EnginePhase } from '../../src/engine/lifecycle.js';

/** A fresh lifecycle moved through `path`. */
function at(...path: EnginePhase[]): EngineLifecycle {
  const life = new EngineLifecycle();
  for (const phase of path) life.moveTo(phase);
  return life;
}

describe('engine lifecycle', () => {
  it('starts idle, works, drains and stops, saying at each step what the engine may do', () => {
    const life = new EngineLifecycle();
    expect([life.phase, life.working, life.closing, life.stopped]).toEqual(['idle', false, false, false]);
    expect(life.moveTo('working')).toBe(true);
    expect([life.phase, life.working, life.closing]).toEqual(['working', true, false]);
    expect(life.moveTo('draining')).toBe(true);
    expect([life.phase, life.working, life.closing, life.stopped]).toEqual(['draining', false, true, false]);
    expect(life.moveTo('stopped')).toBe(true);
    expect([life.phase, life.working, life.closing, life.stopped]).toEqual(['stopped', false, true, true]);
  });

  it('drains or stops from idle (a foreground engine), and stops from any phase', () => {
    expect(at('draining').phase).toBe('draining');
    for (const path of [[], ['working'], ['draining'], ['working', 'draining']] as EnginePhase[][]) {
      expect(at(...path, 'stopped').phase).toBe('stopped');
    }
  });

  it('treats a move to the phase it is in as done, and nothing else', () => {
    const life = at('working');
    expect(life.moveTo('working')).toBe(false);
    expect(life.phase).toBe('working');
    expect(at('stopped').moveTo('stopped')).toBe(false);
  });

  it('refuses to take work again once draining or stopped, with a coded error', () => {
    for (const path of [['stopped'], ['working', 'draining']] as EnginePhase[][]) {
      const life = at(...path);
      const phase = life.phase;
      expect(() => life.moveTo('working')).toThrow(expect.objectContaining({ code: 'ENGINE_STOPPED' }));
      expect(life.phase).toBe(phase);
    }
    expect(() => at('stopped').moveTo('draining')).toThrow(expect.objectContaining({ code: 'ENGINE_STOPPED' }));
    expect(() => at('working').moveTo('idle')).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});
