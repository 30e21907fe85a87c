import { describe, expect, it } from 'vitest';
import { ClientActivity } from '../../src/engine/client-activity.js';

describe('ClientActivity', () => {
  it('counts totals and reports the last full second as the rate, zero after a quiet gap', () => {
    const activity = new ClientActivity();
    activity.published('a', 5, 1_000);
    activity.published('a', 5, 1_900);
    activity.delivered('a', 3, 1_950);
    expect(activity.view('a', 1_990)).toEqual({ published: 10, delivered: 3, publishedPerSecond: 0, deliveredPerSecond: 0 });
    activity.published('a', 2, 2_100);
    expect(activity.view('a', 2_200)).toEqual({ published: 12, delivered: 3, publishedPerSecond: 10, deliveredPerSecond: 3 });
    expect(activity.view('a', 5_000)).toMatchObject({ published: 12, publishedPerSecond: 0 });
    expect(activity.view('nobody', 5_000)).toEqual({ published: 0, delivered: 0, publishedPerSecond: 0, deliveredPerSecond: 0 });
  });
});
