import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../../src/server/ws/client-auth.js';

describe('AuthThrottle', () => {
  it('slows an address down after its free failures, more with each, until a success or the window passes', () => {
    const throttle = new AuthThrottle(3, 60_000, 5_000, 100);
    for (let i = 0; i < 3; i++) {
      expect(throttle.delayFor('10.0.0.1', 1000)).toBe(0);
      throttle.failed('10.0.0.1', 1000);
    }
    expect(throttle.delayFor('10.0.0.1', 1000)).toBe(100);
    throttle.failed('10.0.0.1', 1000);
    expect(throttle.delayFor('10.0.0.1', 1000)).toBe(200);
    for (let i = 0; i < 10; i++) throttle.failed('10.0.0.1', 1000);
    expect(throttle.delayFor('10.0.0.1', 1000)).toBe(5_000);
    expect(throttle.delayFor('10.0.0.2', 1000), 'other addresses are not affected').toBe(0);
    expect(throttle.delayFor('10.0.0.1', 1000 + 61_000), 'the window passed').toBe(0);
    throttle.succeeded('10.0.0.1');
    expect(throttle.delayFor('10.0.0.1', 2000)).toBe(0);
  });

  it('tracks a bounded number of addresses', () => {
    const throttle = new AuthThrottle(0, 60_000, 5_000, 10);
    for (let i = 0; i < 50; i++) throttle.failed(`10.0.1.${i}`, 0);
    expect(throttle.delayFor('10.0.1.0', 0)).toBe(0);
    expect(throttle.delayFor('10.0.1.49', 0)).toBeGreaterThan(0);
  });
});
