import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { SchedAPI } from '../src/api';
import { SchedModel } from '../src/model';

// The model's timers are the browser's (window.setTimeout): Node has the same functions.
(globalThis as { window?: unknown }).window ??= globalThis;

/** A panel model whose server answers `whoami` with `caller` and lists from `jobs`, `runs`;
 * every request is recorded ("METHOD path?query"). */
function modelFor(
  caller: { name: string; admin: boolean },
  jobs: Array<{ id: string; owner: string }>,
  runs: Array<{ id: string; owner: string }>
): { model: SchedModel; requests: string[] } {
  const requests: string[] = [];
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    init: { cache: 'default' },
    fetch: async (input: RequestInfo | URL) => {
      const url = new URL((input as Request).url);
      const path = url.pathname.replace('/sched/api/', '');
      requests.push(`${(input as Request).method} ${path}${url.search}`);
      const owner = url.searchParams.get('owner');
      const mine = <T extends { owner: string }>(items: T[]) =>
        owner ? items.filter(i => i.owner === owner) : items;
      const body =
        path === 'whoami'
          ? caller
          : path === 'jobs'
            ? { jobs: mine(jobs).map(j => job(j.id, j.owner)), next_cursor: null }
            : path === 'runs'
              ? { runs: mine(runs).map(r => run(r.id, r.owner)), next_cursor: null }
              : path === 'batches'
                ? { batches: [], next_cursor: null }
                : { runs: 0, succeeded: 0, failed: 0, success_rate: null };
      return new Response(JSON.stringify(body), {
        status: 200,
        headers: { 'Content-Type': 'application/json' }
      });
    }
  });
  return { model: new SchedModel(new SchedAPI(settings)), requests };
}

function job(id: string, owner: string): Record<string, unknown> {
  return {
    id, owner, name: id, notebook: `${id}.ipynb`, status: 'active', tags: [],
    trigger: { kind: 'manual' }, trigger_description: 'manual', last_run: null, next_fire_at: null
  }; // prettier-ignore
}

function run(id: string, owner: string): Record<string, unknown> {
  return {
    id, owner, job_id: null, notebook: 'x.ipynb', status: 'succeeded', trigger: 'manual',
    attempt: 1, queued_at: '2026-12-01T00:00:00Z', progress: { done: 1, total: 1 }
  }; // prettier-ignore
}

const EVERYONE = [
  { id: 'a1', owner: 'alice' },
  { id: 'b1', owner: 'bob' },
  { id: 'c1', owner: 'carol' }
];

describe('an admin’s "all users" switch', () => {
  it('lists the admin’s own until switched, then everyone’s with owners shown', async () => {
    const { model, requests } = modelFor({ name: 'carol', admin: true }, EVERYONE, EVERYONE);
    await model.refresh();
    expect(model.caller).toEqual({ name: 'carol', admin: true });
    expect(model.jobs.map(j => j.id)).toEqual(['c1']);
    expect(model.showsOwners).toBe(false);
    expect(requests).toContain('GET jobs?limit=200&owner=carol');

    model.setFilters({ allUsers: true });
    await model.refresh();
    expect(model.jobs.map(j => [j.id, j.owner])).toEqual([
      ['a1', 'alice'],
      ['b1', 'bob'],
      ['c1', 'carol']
    ]);
    expect(model.runs.map(r => r.owner)).toEqual(['alice', 'bob', 'carol']);
    expect(model.showsOwners).toBe(true);
    expect(requests.filter(r => r.startsWith('GET whoami'))).toHaveLength(1);
    model.dispose();
  });

  it('is not there for other users, whose lists are their own', async () => {
    const theirs = [{ id: 'a1', owner: 'alice' }];
    const { model, requests } = modelFor({ name: 'alice', admin: false }, theirs, theirs);
    model.setFilters({ allUsers: true }); // not offered; even if set, nothing changes
    await model.refresh();
    expect(model.showsOwners).toBe(false);
    expect(model.jobs.map(j => j.id)).toEqual(['a1']);
    expect(requests.some(r => r.includes('owner='))).toBe(false);
    model.dispose();
  });
});
