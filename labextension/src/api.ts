/**
 * The REST API of the server extension (`{base}sched/api/`): its types, taken from the
 * generated `api-types.ts`, a client whose requests are typed by the generated `paths`
 * (path, method, parameters, body and answer), and how its errors map to form fields.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { components, paths } from './api-types';

export type { RunStatus } from './statuses';

export type Schemas = components['schemas'];
export type Job = Schemas['Job'];
export type JobCreate = Schemas['JobCreate'];
export type JobUpdate = Schemas['JobUpdate'];
export type JobPage = Schemas['JobPage'];
export type JobStats = Schemas['JobStats'];
export type Run = Schemas['Run'];
export type RunPage = Schemas['RunPage'];
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
export type NotebookParameters = Schemas['NotebookParameters'];
export type ErrorBody = Schemas['ErrorBody'];
export type Health = Schemas['Health'];
export type Caller = Schemas['Caller'];
export type WebhookToken = Schemas['WebhookToken'];
export type WebhookTarget = Schemas['WebhookTarget'];
export type EmailTarget = Schemas['EmailTarget'];
export type NotificationTarget = WebhookTarget | EmailTarget;
export type EmailReport = Schemas['EmailReport'];
export type ReportAttachment = NonNullable<EmailReport['attach']>[number];
export type NotifyOn = NonNullable<WebhookTarget['on']>[number];
export type WebhookFormat = NonNullable<WebhookTarget['format']>;
export type Overlap = Job['overlap'];
export type Misfire = Job['misfire'];
export type OutputFormat = NonNullable<JobCreate['output_formats']>[number];
export type Sweep = NonNullable<JobCreate['sweep']>;
export type Check = Schemas['Check'];
export type Batch = Schemas['Batch'];
export type BatchPage = Schemas['BatchPage'];
export type BackfillRequest = Schemas['BackfillRequest'];
export type BackfillPreview = Schemas['BackfillPreview'];
export type Summary = Schemas['Summary'];
export type SummaryRow = Schemas['SummaryRow'];

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
 * `error` as an {@link ApiError}: itself, else (a failure that is not the server's answer)
 * an error of status 0.
 */
export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) {
    return error;
  }
  return new ApiError(error instanceof Error ? error.message : String(error), 0);
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
 * `notifications.<i>.<key>`, and the other advanced settings by their API name. Anything
 * else is shown at the top (`''`).
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
  if (head === 'notifications') {
    // a target's part: `notifications.<i>.<key>`
    return parts.slice(0, 3).join('.');
  }
  if (head === 'body' || head === 'version') {
    return '';
  }
  if (head === 'sweep') {
    // a set's parameter: `sweep.<i>.<name>` (the dialog shows it at that grid row)
    return field;
  }
  return head;
}

// -- requests typed by the generated `paths` ---------------------------------------------

type Method = 'get' | 'post' | 'patch' | 'delete';
type Path = keyof paths;

/** The operation of method `M` on path `P` (never when the path has no such method). */
type Operation<P extends Path, M extends Method> = NonNullable<paths[P][M]>;

/** The paths that answer method `M`. */
type PathsWith<M extends Method> = {
  [P in Path]: [Operation<P, M>] extends [never] ? never : P;
}[Path];

type ParametersOf<O> = O extends { parameters: infer T } ? T : never;
type PathParams<O> = ParametersOf<O> extends { path: infer T } ? T : never;
type QueryParams<O> = ParametersOf<O> extends { query?: infer T } ? T : never;
type JsonBody<O> = O extends { requestBody?: infer R }
  ? [NonNullable<R>] extends [never]
    ? never
    : NonNullable<R> extends { content: { 'application/json': infer B } }
      ? B
      : never
  : never;

/** What a request of operation `O` takes: its path parameters, query and JSON body. */
export type RequestOptions<O> = ([PathParams<O>] extends [never]
  ? { path?: undefined }
  : { path: PathParams<O> }) &
  ([QueryParams<O>] extends [never] | [undefined]
    ? { query?: undefined }
    : { query?: QueryParams<O> }) &
  ([JsonBody<O>] extends [never]
    ? { body?: undefined }
    : O extends { requestBody: object }
      ? { body: JsonBody<O> }
      : { body?: JsonBody<O> }) & { signal?: AbortSignal };

/** The options argument, left out when nothing in it is required. */
type OptionsArgs<O> =
  Record<string, never> extends RequestOptions<O> ? [RequestOptions<O>?] : [RequestOptions<O>];

type SuccessOf<O> = O extends { responses: infer R }
  ? R[Extract<keyof R, 200 | 201 | 202 | 204>]
  : never;

/** The JSON answer of operation `O` when it succeeds (`void` for 204 and non-JSON ones). */
export type JsonAnswer<O> =
  SuccessOf<O> extends { content: { 'application/json': infer T } } ? T : void;

type QueryValue = string | number | boolean | undefined | null;

/** The API's URL below the server's base URL. */
export const API_PREFIX = 'sched/api';

/** A client of the API; one per server connection. */
export class SchedAPI {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /**
   * The response to `method` on `path` (a path of the API, `{name}` filled from
   * `options.path`), or an {@link ApiError}.
   */
  async request<M extends Method, P extends PathsWith<M>>(
    method: M,
    path: P,
    ...[options]: OptionsArgs<Operation<P, M>>
  ): Promise<Response> {
    const {
      path: params,
      query,
      body,
      signal
    } = (options ?? {}) as {
      path?: Record<string, string>;
      query?: Record<string, QueryValue>;
      body?: unknown;
      signal?: AbortSignal;
    };
    const init: RequestInit = { method: method.toUpperCase(), signal };
    if (method !== 'get') {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = body === undefined ? undefined : JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(path, params, query),
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

  /** The JSON answer of `method` on `path` (nothing for 204), or an {@link ApiError}. */
  async call<M extends Method, P extends PathsWith<M>>(
    method: M,
    path: P,
    ...options: OptionsArgs<Operation<P, M>>
  ): Promise<JsonAnswer<Operation<P, M>>> {
    const response = await this.request(method, path, ...options);
    if (response.status === 204) {
      return undefined as JsonAnswer<Operation<P, M>>;
    }
    return (await response.json()) as JsonAnswer<Operation<P, M>>;
  }

  /** Jobs, newest first; an admin's are everyone's unless `owner` names whose. */
  listJobs(
    query: { status?: JobStatus; tag?: string; limit?: number; owner?: string } = {}
  ): Promise<JobPage> {
    return this.call('get', '/jobs', { query: { limit: 200, ...query } });
  }
  getJob(id: string): Promise<Job> {
    return this.call('get', '/jobs/{job_id}', { path: { job_id: id } });
  }
  createJob(job: JobCreate): Promise<Job> {
    return this.call('post', '/jobs', { body: job });
  }
  updateJob(id: string, changes: JobUpdate): Promise<Job> {
    return this.call('patch', '/jobs/{job_id}', { path: { job_id: id }, body: changes });
  }
  /**
   * Delete a job. The server refuses (409) a job that other jobs run after, unless
   * `force`: they then no longer wait for it.
   */
  deleteJob(id: string, options: { force?: boolean } = {}): Promise<void> {
    return this.call('delete', '/jobs/{job_id}', {
      path: { job_id: id },
      query: { force: options.force || undefined }
    });
  }
  pauseJob(id: string): Promise<Job> {
    return this.call('post', '/jobs/{job_id}/pause', { path: { job_id: id } });
  }
  resumeJob(id: string): Promise<Job> {
    return this.call('post', '/jobs/{job_id}/resume', { path: { job_id: id } });
  }
  runJob(id: string, parameters?: Record<string, unknown>): Promise<Run> {
    return this.call('post', '/jobs/{job_id}/run', {
      path: { job_id: id },
      body: parameters ? { parameters } : {}
    });
  }
  /** Create or rotate a job's webhook token (the token is only ever shown in this answer). */
  createWebhook(id: string): Promise<WebhookToken> {
    return this.call('post', '/jobs/{job_id}/webhook', { path: { job_id: id } });
  }
  /** Turn a job's webhook off. */
  deleteWebhook(id: string): Promise<void> {
    return this.call('delete', '/jobs/{job_id}/webhook', { path: { job_id: id } });
  }
  jobStats(id: string): Promise<JobStats> {
    return this.call('get', '/jobs/{job_id}/stats', { path: { job_id: id } });
  }
  /** Runs, newest first; an admin's are everyone's unless `owner` names whose. */
  listRuns(
    query: { job_id?: string; status?: Run['status']; limit?: number; owner?: string } = {}
  ): Promise<RunPage> {
    return this.call('get', '/runs', { query: { limit: 50, ...query } });
  }
  getRun(id: string): Promise<Run> {
    return this.call('get', '/runs/{run_id}', { path: { run_id: id } });
  }
  cancelRun(id: string): Promise<Run> {
    return this.call('post', '/runs/{run_id}/cancel', { path: { run_id: id } });
  }
  rerun(id: string): Promise<Run> {
    return this.call('post', '/runs/{run_id}/rerun', { path: { run_id: id } });
  }
  /** The executed notebook of a run, as notebook JSON. */
  async runOutput(id: string): Promise<Record<string, unknown>> {
    const response = await this.request('get', '/runs/{run_id}/output', {
      path: { run_id: id },
      query: { format: 'ipynb' }
    });
    return (await response.json()) as Record<string, unknown>;
  }
  /** A run's output file in `format` (the HTML rendering is a download, never a page). */
  async runOutputFile(id: string, format: OutputFormat): Promise<Blob> {
    const response = await this.request('get', '/runs/{run_id}/output', {
      path: { run_id: id },
      query: { format }
    });
    return response.blob();
  }
  /** The URL that downloads a run's output in `format` (the server answers an attachment). */
  outputUrl(id: string, format: OutputFormat): string {
    return this.url('/runs/{run_id}/output', { run_id: id }, { format });
  }
  /** What changed from run `a` to run `b` (parameters, nbdime's diff cell by cell). */
  compareRuns(a: string, b: string): Promise<Schemas['RunComparison']> {
    return this.call('get', '/runs/{run_id}/compare/{other_id}', {
      path: { run_id: a, other_id: b }
    });
  }
  /** The URL of a run's thumbnail (only for runs with `has_thumbnail`). */
  thumbnailUrl(id: string): string {
    return this.url('/runs/{run_id}/thumbnail', { run_id: id });
  }
  /** The log of a run from byte `offset`, and where to continue. */
  async runLog(id: string, offset = 0): Promise<{ text: string; next: number }> {
    const response = await this.request('get', '/runs/{run_id}/log', {
      path: { run_id: id },
      query: { offset }
    });
    const text = await response.text();
    const header = response.headers.get('X-Next-Offset');
    const next = header !== null && /^\d+$/.test(header) ? Number(header) : offset;
    return { text, next };
  }
  /** What a backfill of the range would make (fires, runs, first and last fire). */
  backfillPreview(id: string, request: BackfillRequest): Promise<BackfillPreview> {
    return this.call('post', '/jobs/{job_id}/backfill/preview', {
      path: { job_id: id },
      body: request
    });
  }
  /** One run per fire of the job's schedule in the range, as one batch. */
  backfill(id: string, request: BackfillRequest): Promise<Batch> {
    return this.call('post', '/jobs/{job_id}/backfill', { path: { job_id: id }, body: request });
  }
  listBatches(query: { job_id?: string; limit?: number } = {}): Promise<BatchPage> {
    return this.call('get', '/batches', { query: { limit: 20, ...query } });
  }
  getBatch(id: string): Promise<Batch> {
    return this.call('get', '/batches/{batch_id}', { path: { batch_id: id } });
  }
  /** A batch's runs (or the job's newest `limit`) as a table. */
  summary(jobId: string, query: { batch?: string; limit?: number } = {}): Promise<Summary> {
    return this.call('get', '/jobs/{job_id}/summary', { path: { job_id: jobId }, query });
  }
  /** The URL that downloads a summary as CSV. */
  summaryCsvUrl(jobId: string, batch?: string): string {
    return this.url('/jobs/{job_id}/summary', { job_id: jobId }, { batch, format: 'csv' });
  }
  preview(request: PreviewRequest, options: { signal?: AbortSignal } = {}): Promise<Preview> {
    return this.call('post', '/preview', { body: request, signal: options.signal });
  }
  notebookParameters(path: string): Promise<NotebookParameters> {
    return this.call('get', '/notebooks/parameters', { query: { path } });
  }
  health(): Promise<Health> {
    return this.call('get', '/health');
  }
  /** Who the server takes this user for, and whether they see every user's jobs. */
  whoAmI(): Promise<Caller> {
    return this.call('get', '/whoami');
  }

  /** The absolute URL of API path `path` with its `{name}` parts filled in and `query`. */
  private url(
    path: Path,
    params: Record<string, string> = {},
    query: Record<string, QueryValue> = {}
  ): string {
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
      if (params[name] === undefined) {
        throw new Error(`no value for {${name}} in ${path}`);
      }
      return encodeURIComponent(params[name]);
    });
    const search = Object.entries(query)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    const url = URLExt.join(this.serverSettings.baseUrl, API_PREFIX, filled.slice(1));
    return search ? `${url}?${search}` : url;
  }
}
