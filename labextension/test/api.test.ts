import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { ApiError, SchedAPI, asApiError, errorFromResponse, formField } from '../src/api';

describe('errorFromResponse', () => {
  it('reads the server’s {message, reason, field}', () => {
    const body = JSON.stringify({
      message: 'trigger.cron: bad minute',
      reason: 'invalid',
      field: 'trigger.cron'
    });
    const error = errorFromResponse(422, body);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe('trigger.cron: bad minute');
    expect(error.status).toBe(422);
    expect(error.reason).toBe('invalid');
    expect(error.field).toBe('trigger.cron');
    expect(error.unreachable).toBe(false);
  });

  it('words a body that is not the server’s JSON', () => {
    const error = errorFromResponse(502, '<html>Bad gateway</html>', 'Bad Gateway');
    expect(error.message).toBe('The server answered Bad Gateway.');
    expect(error.field).toBeNull();
    expect(error.unreachable).toBe(true);
    expect(errorFromResponse(500, '').message).toBe('The server answered HTTP 500.');
    expect(errorFromResponse(404, '{"detail": "x"}').message).toBe('The server answered HTTP 404.');
  });

  it('tells an unreachable server from a refusal', () => {
    expect(new ApiError('down', 0).unreachable).toBe(true);
    expect(new ApiError('gone', 503).unreachable).toBe(true);
    expect(new ApiError('no', 409).unreachable).toBe(false);
  });
});

describe('asApiError', () => {
  it('keeps an ApiError, and makes any other failure one that did not reach the server', () => {
    const refused = new ApiError('no', 409);
    expect(asApiError(refused)).toBe(refused);
    const broken = asApiError(new TypeError('x is undefined'));
    expect(broken).toBeInstanceOf(ApiError);
    expect([broken.message, broken.status]).toEqual(['x is undefined', 0]);
    expect(asApiError('down').message).toBe('down');
  });
});

describe('formField', () => {
  it.each([
    [null, ''],
    ['body', ''],
    ['version', ''],
    ['name', 'name'],
    ['notebook', 'notebook'],
    ['parameters', 'parameters'],
    ['parameters.days', 'parameters.days'],
    ['parameters.days.0', 'parameters.days'],
    ['trigger', 'trigger'],
    ['trigger.cron', 'trigger.cron'],
    ['trigger.timezone', 'trigger.timezone'],
    ['trigger.every_seconds', 'trigger.every_seconds'],
    ['trigger.at', 'trigger.at'],
    ['trigger.kind', 'trigger'],
    ['trigger.event', 'trigger.event'],
    ['trigger.jobs.0', 'trigger.jobs'],
    ['retry_backoff', 'retries'],
    ['retry_delay_seconds', 'retries'],
    ['timeout_seconds', 'timeout_seconds'],
    ['tags.1', 'tags'],
    ['output_formats.0', 'output_formats'],
    ['notifications', 'notifications'],
    ['notifications.1', 'notifications.1'],
    ['notifications.1.to', 'notifications.1.to'],
    ['notifications.1.to.0', 'notifications.1.to']
  ])('%s → %j', (field, expected) => {
    expect(formField(field)).toBe(expected);
  });
});

/** A client whose requests are recorded as "METHOD URL" (and their bodies) and get `answer()`. */
function recording(answer = () => new Response(null, { status: 204 })): {
  api: SchedAPI;
  requests: string[];
  bodies: string[];
} {
  const requests: string[] = [];
  const bodies: string[] = [];
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/base/',
    // no cache-busting number in the URLs compared
    init: { cache: 'default' },
    fetch: async (input: RequestInfo | URL) => {
      const request = input as Request;
      requests.push(`${request.method} ${request.url}`);
      bodies.push(await request.text());
      return answer();
    }
  });
  return { api: new SchedAPI(settings), requests, bodies };
}

const json = (value: unknown, status = 200): Response =>
  new Response(JSON.stringify(value), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });

describe('SchedAPI.deleteJob', () => {
  it('asks for the job only, unless forced', async () => {
    const { api, requests } = recording();
    await api.deleteJob('a b');
    await api.deleteJob('a b', { force: false });
    await api.deleteJob('a b', { force: true });
    expect(requests).toEqual([
      'DELETE http://localhost:8888/base/sched/api/jobs/a%20b',
      'DELETE http://localhost:8888/base/sched/api/jobs/a%20b',
      'DELETE http://localhost:8888/base/sched/api/jobs/a%20b?force=true'
    ]);
  });

  it('lets the server’s refusal through as an ApiError', async () => {
    const body = {
      message: 'job_id: other jobs run after this one: B (j2); delete with force',
      reason: 'conflict',
      field: 'job_id'
    };
    const { api } = recording(() => new Response(JSON.stringify(body), { status: 409 }));
    const error = await api.deleteJob('j1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(409);
    expect((error as ApiError).message).toBe(body.message);
  });
});

describe('SchedAPI requests', () => {
  it('fill the path’s parameters, encoded, and leave out empty query values', async () => {
    const { api, requests } = recording(() => json({ jobs: [], runs: [], next_cursor: null }));
    await api.getJob('j/1');
    await api.listJobs({ status: undefined, tag: 'a b' });
    await api.listRuns({ job_id: 'j1', status: 'failed', limit: 5 });
    expect(requests).toEqual([
      'GET http://localhost:8888/base/sched/api/jobs/j%2F1',
      'GET http://localhost:8888/base/sched/api/jobs?limit=200&tag=a%20b',
      'GET http://localhost:8888/base/sched/api/runs?limit=5&job_id=j1&status=failed'
    ]);
  });

  it('send the body as JSON and give the answer back', async () => {
    const run = { id: 'r1', status: 'queued' };
    const { api, requests, bodies } = recording(() => json(run, 201));
    expect(await api.runJob('j1', { days: 3 })).toEqual(run);
    await api.updateJob('j1', { name: 'n', version: 2 });
    expect(requests).toEqual([
      'POST http://localhost:8888/base/sched/api/jobs/j1/run',
      'PATCH http://localhost:8888/base/sched/api/jobs/j1'
    ]);
    expect(bodies.map(b => JSON.parse(b))).toEqual([
      { parameters: { days: 3 } },
      { name: 'n', version: 2 }
    ]);
  });

  it('read a log from an offset, and where to go on from the server’s header', async () => {
    const { api, requests } = recording(
      () => new Response('line\n', { headers: { 'X-Next-Offset': '15' } })
    );
    expect(await api.runLog('r1', 10)).toEqual({ text: 'line\n', next: 15 });
    expect(requests).toEqual(['GET http://localhost:8888/base/sched/api/runs/r1/log?offset=10']);
  });

  it('download an output as a file, at the URL outputUrl gives', async () => {
    const { api, requests } = recording(
      () => new Response('<html></html>', { headers: { 'Content-Type': 'text/html' } })
    );
    const blob = await api.runOutputFile('r1', 'html');
    expect(await blob.text()).toBe('<html></html>');
    expect(requests).toEqual([`GET ${api.outputUrl('r1', 'html')}`]);
    expect(api.outputUrl('r 1', 'ipynb')).toBe(
      'http://localhost:8888/base/sched/api/runs/r%201/output?format=ipynb'
    );
  });

  it('turn a request that does not reach the server into an unreachable ApiError', async () => {
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/',
      fetch: async () => {
        throw new TypeError('Failed to fetch');
      }
    });
    const error = await new SchedAPI(settings).health().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).unreachable).toBe(true);
    expect((error as ApiError).message).toBe('Cannot reach the server: Failed to fetch');
  });
});
