/**
 * The REST API of the server extension (`{base}sched/api/`): its types, taken from the
 * generated `api-types.ts`, a client, and how its errors map to form fields.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { components } from './api-types';

type Schemas = components['schemas'];
export type Job = Schemas['Job'];
export type JobCreate = Schemas['JobCreate'];
export type JobUpdate = Schemas['JobUpdate'];
export type JobPage = Schemas['JobPage'];
export type JobStats = Schemas['JobStats'];
export type Run = Schemas['Run'];
export type RunPage = Schemas['RunPage'];
export type RunStatus = Run['status'];
export type RunTrigger = Run['trigger'];
export type JobStatus = Job['status'];
export type Trigger = Job['trigger'];
export type CronTrigger = Schemas['CronTrigger'];
export type IntervalTrigger = Schemas['IntervalTrigger'];
export type OnceTrigger = Schemas['OnceTrigger'];
export type ManualTrigger = Schemas['ManualTrigger'];
export type EventTrigger = Schemas['EventTrigger'];
export type AfterTrigger = Schemas['AfterTrigger'];
export type TriggerKind = Trigger['kind'];
export type Preview = Schemas['Preview'];
export type PreviewRequest = Schemas['PreviewRequest'];
export type NotebookParameter = Schemas['NotebookParameter'];
export type ErrorBody = Schemas['ErrorBody'];
export type Health = Schemas['Health'];
export type WebhookToken = Schemas['WebhookToken'];
export type WebhookTarget = Schemas['WebhookTarget'];
export type EmailTarget = Schemas['EmailTarget'];
export type NotificationTarget = WebhookTarget | EmailTarget;
export type NotifyOn = NonNullable<WebhookTarget['on']>[number];
export type WebhookFormat = NonNullable<WebhookTarget['format']>;
export type Overlap = Job['overlap'];
export type Misfire = Job['misfire'];
export type OutputFormat = NonNullable<JobCreate['output_formats']>[number];

/** Every run status, in the order the UI lists them. */
export const RUN_STATUSES: RunStatus[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'lost',
  'skipped'
];

/** Statuses after which a run changes no more. */
export const FINISHED: ReadonlySet<RunStatus> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'lost',
  'skipped'
]);

/**
 * An error answered by the server (`status` > 0) or a request that did not reach it
 * (`status` 0: the server is unreachable).
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | null = null,
    readonly field: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Whether the server could not be reached at all (worth retrying). */
  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/**
 * The error of a response with HTTP status `status` and body `text`: the server's
 * `{"message", "reason", "field"}` when the body is that, else the status in words.
 */
export function errorFromResponse(status: number, text: string, statusText = ''): ApiError {
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's or tornado's own page
  }
  if (body && typeof body === 'object' && typeof (body as ErrorBody).message === 'string') {
    const { message, reason, field } = body as ErrorBody;
    return new ApiError(message, status, reason ?? null, field ?? null);
  }
  const words = statusText || (status ? `HTTP ${status}` : 'no response');
  return new ApiError(`The server answered ${words}.`, status);
}

/**
 * The form field a server error belongs to. The server names fields with dots
 * (`trigger.cron`, `parameters.days`); the dialog's fields are:
 * `name`, `notebook`, `parameters.<name>`, `trigger` (and `trigger.<key>` for its parts),
 * and the advanced settings by their API name. Anything else is shown at the top (`''`).
 */
export function formField(field: string | null | undefined): string {
  if (!field) {
    return '';
  }
  const parts = field.split('.');
  const head = parts[0];
  if (head === 'parameters') {
    return parts.length > 1 ? `parameters.${parts[1]}` : 'parameters';
  }
  if (head === 'trigger') {
    const key = parts[1];
    if (['cron', 'timezone', 'every_seconds', 'at', 'event', 'jobs'].includes(key)) {
      return `trigger.${key}`;
    }
    return 'trigger';
  }
  if (
    head === 'retry_delay_seconds' ||
    head === 'retry_backoff' ||
    head === 'retry_max_delay_seconds'
  ) {
    return 'retries';
  }
  if (head === 'body' || head === 'version') {
    return '';
  }
  return head;
}

/** The API's URL below the server's base URL. */
export const API_PREFIX = 'sched/api';

/** A client of the API; one per server connection. */
export class SchedAPI {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** The absolute URL of `path` (below `sched/api/`) with `query`. */
  url(path: string, query: Record<string, string | number | undefined | null> = {}): string {
    const params = Object.entries(query)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    const url = URLExt.join(this.serverSettings.baseUrl, API_PREFIX, path);
    return params ? `${url}?${params}` : url;
  }

  /** The response to a request, or an {@link ApiError}. */
  async fetch(path: string, init: RequestInit = {}, query = {}): Promise<Response> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(path, query),
        init,
        this.serverSettings
      );
    } catch (error) {
      throw new ApiError(
        `Cannot reach the server: ${(error as Error).message ?? error}`,
        0,
        'unreachable'
      );
    }
    if (!response.ok) {
      throw errorFromResponse(response.status, await response.text(), response.statusText);
    }
    return response;
  }

  async json<T>(path: string, init: RequestInit = {}, query = {}): Promise<T> {
    const response = await this.fetch(path, init, query);
    if (response.status === 204) {
      return undefined as T;
    }
    return (await response.json()) as T;
  }

  private send<T>(method: string, path: string, body?: unknown, query = {}): Promise<T> {
    return this.json<T>(
      path,
      {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: { 'Content-Type': 'application/json' }
      },
      query
    );
  }

  listJobs(
    query: { status?: JobStatus | ''; tag?: string; limit?: number } = {}
  ): Promise<JobPage> {
    return this.json('jobs', {}, { limit: 200, ...query });
  }
  getJob(id: string): Promise<Job> {
    return this.json(`jobs/${encodeURIComponent(id)}`);
  }
  createJob(job: JobCreate): Promise<Job> {
    return this.send('POST', 'jobs', job);
  }
  updateJob(id: string, changes: JobUpdate): Promise<Job> {
    return this.send('PATCH', `jobs/${encodeURIComponent(id)}`, changes);
  }
  /**
   * Delete a job. The server refuses (409) a job that other jobs run after, unless
   * `force`: they then no longer wait for it.
   */
  deleteJob(id: string, options: { force?: boolean } = {}): Promise<void> {
    return this.send('DELETE', `jobs/${encodeURIComponent(id)}`, undefined, {
      force: options.force ? 'true' : undefined
    });
  }
  pauseJob(id: string): Promise<Job> {
    return this.send('POST', `jobs/${encodeURIComponent(id)}/pause`);
  }
  resumeJob(id: string): Promise<Job> {
    return this.send('POST', `jobs/${encodeURIComponent(id)}/resume`);
  }
  runJob(id: string, parameters?: Record<string, unknown>): Promise<Run> {
    return this.send(
      'POST',
      `jobs/${encodeURIComponent(id)}/run`,
      parameters ? { parameters } : {}
    );
  }
  /** Create or rotate a job's webhook token (the token is only ever shown in this answer). */
  createWebhook(id: string): Promise<WebhookToken> {
    return this.send('POST', `jobs/${encodeURIComponent(id)}/webhook`);
  }
  /** Turn a job's webhook off. */
  deleteWebhook(id: string): Promise<void> {
    return this.send('DELETE', `jobs/${encodeURIComponent(id)}/webhook`);
  }
  jobStats(id: string): Promise<JobStats> {
    return this.json(`jobs/${encodeURIComponent(id)}/stats`);
  }
  listRuns(
    query: { job_id?: string; status?: RunStatus | ''; limit?: number } = {}
  ): Promise<RunPage> {
    return this.json('runs', {}, { limit: 50, ...query });
  }
  getRun(id: string): Promise<Run> {
    return this.json(`runs/${encodeURIComponent(id)}`);
  }
  cancelRun(id: string): Promise<Run> {
    return this.send('POST', `runs/${encodeURIComponent(id)}/cancel`);
  }
  rerun(id: string): Promise<Run> {
    return this.send('POST', `runs/${encodeURIComponent(id)}/rerun`);
  }
  /** The executed notebook of a run, as notebook JSON. */
  async runOutput(id: string): Promise<Record<string, unknown>> {
    return this.json(`runs/${encodeURIComponent(id)}/output`, {}, { format: 'ipynb' });
  }
  /** The URL that downloads a run's HTML (the server answers it as an attachment). */
  outputUrl(id: string, format: OutputFormat): string {
    return this.url(`runs/${encodeURIComponent(id)}/output`, { format });
  }
  /** The log of a run from byte `offset`, and where to continue. */
  async runLog(id: string, offset = 0): Promise<{ text: string; next: number }> {
    const response = await this.fetch(`runs/${encodeURIComponent(id)}/log`, {}, { offset });
    const text = await response.text();
    const header = response.headers.get('X-Next-Offset');
    const next = header !== null && /^\d+$/.test(header) ? Number(header) : offset;
    return { text, next };
  }
  preview(request: PreviewRequest, init: RequestInit = {}): Promise<Preview> {
    return this.json('preview', {
      ...init,
      method: 'POST',
      body: JSON.stringify(request),
      headers: { 'Content-Type': 'application/json' }
    });
  }
  notebookParameters(path: string): Promise<{ parameters: NotebookParameter[] }> {
    return this.json('notebooks/parameters', {}, { path });
  }
  health(): Promise<Health> {
    return this.json('health');
  }
}
