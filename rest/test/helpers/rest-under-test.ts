import { buildRest, type RestService } from '../../src/bootstrap.ts';
import { deletePrefix, startTestStore, testConfig, uniquePrefix, type TestStore } from '../../../test/helpers/env.ts';

/** A public address for the callback check, so tests need no DNS. */
export const publicResolver = async (): Promise<string[]> => ['93.184.216.34'];

export interface RestUnderTest {
  rest: RestService;
  store: TestStore;
  prefix: string;
  close(): Promise<void>;
}

/** A real rest app (supertest drives `rest.app`) on real Redis under a prefix of its own and an s3rver. */
export async function restUnderTest(name: string, overrides: Record<string, string> = {}): Promise<RestUnderTest> {
  const store = await startTestStore();
  const prefix = uniquePrefix(name);
  const rest = await buildRest(testConfig(prefix, overrides), store.endpoint, { resolveHost: publicResolver });
  return {
    rest,
    store,
    prefix,
    async close() {
      await rest.close();
      await store.close();
      await deletePrefix(prefix);
    },
  };
}
