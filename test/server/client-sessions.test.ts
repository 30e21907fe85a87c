import { describe, expect, it } from 'vitest';
import { ClientSessions } from '../../src/server/client-sessions.js';

describe('ClientSessions', () => {
  it('moves a client from active to idle to disconnected, counting its connections', () => {
    const sessions = new ClientSessions(1000);
    sessions.connected('a', 0);
    sessions.connected('a', 10);
    expect(sessions.get('a', 500)).toMatchObject({ status: 'active', connections: 2, lastSeenAt: 10 });
    expect(sessions.get('a', 1500)).toMatchObject({ status: 'idle' });
    sessions.seen('a', 1600);
    expect(sessions.get('a', 1700)).toMatchObject({ status: 'active', lastSeenAt: 1600 });
    sessions.disconnected('a', 1800);
    expect(sessions.get('a', 1900)).toMatchObject({ status: 'active', connections: 1, disconnectedAt: null });
    sessions.disconnected('a', 2000);
    expect(sessions.get('a', 2100)).toMatchObject({ status: 'disconnected', connections: 0, disconnectedAt: 2000 });
    sessions.disconnected('a', 2200); // a stray close changes nothing
    expect(sessions.get('a', 2300)).toMatchObject({ connections: 0, disconnectedAt: 2000 });
    expect(sessions.get('nobody', 0)).toBeNull();
  });

  it('forgets the longest-disconnected clients past its bound, never connected ones', () => {
    const sessions = new ClientSessions(1000, 3);
    sessions.connected('live', 0);
    for (const id of ['x', 'y', 'z', 'w']) {
      sessions.connected(id, 1);
      sessions.disconnected(id, 2);
    }
    const ids = sessions.list(3).map((s) => s.clientId).sort();
    expect(ids).toEqual(['live', 'w', 'z']);
  });
});
