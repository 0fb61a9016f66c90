import { describe, expect, it } from 'vitest';
import { redactRedisUrl } from '../src/redis.ts';

describe('redactRedisUrl', () => {
  it('keeps the user and host of a REDIS_URL and never prints its password', () => {
    const shown = redactRedisUrl('redis://logs:s3cret-pass-0123456789@redis:6379/0');
    expect(shown).not.toContain('s3cret');
    expect(shown).toBe('redis://logs:***@redis:6379/0');
  });

  it('leaves a URL without credentials as it is, and names an unparseable one without echoing it', () => {
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactRedisUrl('not a url with secret')).toBe('(unparseable REDIS_URL)');
  });
});
