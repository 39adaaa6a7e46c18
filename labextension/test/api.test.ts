import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { ApiError, SchedAPI, errorFromResponse, formField } from '../src/api';

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
    ['output_formats.0', 'output_formats']
  ])('%s → %j', (field, expected) => {
    expect(formField(field)).toBe(expected);
  });
});

describe('SchedAPI.deleteJob', () => {
  /** A client whose requests are recorded as "METHOD URL" and get `answer()`. */
  function recording(answer = () => new Response(null, { status: 204 })): {
    api: SchedAPI;
    requests: string[];
  } {
    const requests: string[] = [];
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/base/',
      // no cache-busting number in the URLs compared
      init: { cache: 'default' },
      fetch: async (input: RequestInfo | URL) => {
        const request = input as Request;
        requests.push(`${request.method} ${request.url}`);
        return answer();
      }
    });
    return { api: new SchedAPI(settings), requests };
  }

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
