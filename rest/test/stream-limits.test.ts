// StreamSlots on its own (no Redis, no sockets): the counts, the lifetimes drawn, Retry-After.
import { describe, expect, it } from 'vitest';
import { StreamSlots, type StreamSlot } from '../src/stream-limits.ts';

const limits = { perClient: 2, perProcess: 3, lifetimeMs: 10_000 };

function admitted(slots: StreamSlots, client: string): StreamSlot {
  const a = slots.admit(client);
  if (!a.ok) throw new Error(`refused ${client}: ${a.limit}`);
  return a.slot;
}

describe('StreamSlots', () => {
  it('refuses a client beyond perClient and everyone beyond perProcess, and frees a slot once on release', () => {
    const slots = new StreamSlots(limits, () => 0, () => 0.5);
    const a1 = admitted(slots, 'a');
    admitted(slots, 'a');
    expect(slots.admit('a')).toMatchObject({ ok: false, limit: 'client' });
    admitted(slots, 'b');
    expect(slots.admit('c')).toMatchObject({ ok: false, limit: 'process' });
    a1.release();
    a1.release(); // a second release must not free someone else's slot
    expect(slots.open).toBe(2);
    admitted(slots, 'c');
    expect(slots.admit('a')).toMatchObject({ ok: false, limit: 'process' });
  });

  it('draws each lifetime in [0.8, 1] × the maximum', () => {
    expect(admitted(new StreamSlots(limits, () => 0, () => 0), 'a').lifetimeMs).toBe(8000);
    expect(admitted(new StreamSlots(limits, () => 0, () => 0.999999), 'a').lifetimeMs).toBe(10_000);
  });

  it('answers Retry-After with the seconds until the first of the streams waited for reaches its lifetime', () => {
    let now = 0;
    const slots = new StreamSlots(limits, () => now, () => 1);
    admitted(slots, 'a'); // ends at 10 s
    now = 4000;
    admitted(slots, 'a'); // ends at 14 s
    now = 6500;
    expect(slots.admit('a')).toEqual({ ok: false, limit: 'client', retryAfterSec: 4 });
    now = 9999;
    expect(slots.admit('a')).toEqual({ ok: false, limit: 'client', retryAfterSec: 1 });
  });
});
