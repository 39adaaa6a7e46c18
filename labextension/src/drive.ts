/**
 * A read-only contents drive of run outputs: `SchedRuns:<run id>/<notebook name>` is the
 * executed notebook of a run, fetched from `runs/{id}/output`. Opening it with the
 * document manager shows the output in JupyterLab's own notebook viewer, without copying
 * it into the user's files; saving, renaming and deleting are refused.
 */
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { SchedAPI } from './api';

export const DRIVE_NAME = 'SchedRuns';

/** The path (with the drive prefix) of the output of `runId`, for a notebook `notebook`. */
export function outputPath(runId: string, notebook: string): string {
  const name = notebook.split('/').pop() || 'output.ipynb';
  return `${DRIVE_NAME}:${runId}/${name}`;
}

export class RunOutputDrive implements Contents.IDrive {
  constructor(private api: SchedAPI) {
    this.serverSettings = api.serverSettings;
  }

  readonly name = DRIVE_NAME;
  readonly serverSettings: ServerConnection.ISettings;

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }
  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const parts = localPath.split('/').filter(Boolean);
    const time = new Date().toISOString();
    if (parts.length < 2) {
      // The drive's root and a run's folder list nothing: outputs are opened by path.
      return {
        name: parts[0] ?? '',
        path: localPath,
        type: 'directory',
        writable: false,
        created: time,
        last_modified: time,
        mimetype: '',
        content: [],
        format: 'json'
      };
    }
    const [runId] = parts;
    const name = parts[parts.length - 1];
    const run = await this.api.getRun(runId);
    const content = options?.content === false ? null : await this.api.runOutput(runId);
    const modified = run.finished_at ?? run.started_at ?? run.queued_at;
    return {
      name,
      path: localPath,
      type: 'notebook',
      writable: false,
      created: run.queued_at,
      last_modified: modified,
      mimetype: 'application/x-ipynb+json',
      content,
      format: 'json'
    };
  }

  async getDownloadUrl(localPath: string): Promise<string> {
    return this.api.outputUrl(localPath.split('/')[0], 'ipynb');
  }

  private readOnly(): Promise<never> {
    return Promise.reject(new Error('The output of a run is read-only.'));
  }
  newUntitled(): Promise<Contents.IModel> {
    return this.readOnly();
  }
  delete(): Promise<void> {
    return this.readOnly();
  }
  rename(): Promise<Contents.IModel> {
    return this.readOnly();
  }
  save(): Promise<Contents.IModel> {
    return this.readOnly();
  }
  copy(): Promise<Contents.IModel> {
    return this.readOnly();
  }
  createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return this.readOnly();
  }
  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }
  restoreCheckpoint(): Promise<void> {
    return this.readOnly();
  }
  deleteCheckpoint(): Promise<void> {
    return this.readOnly();
  }

  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _disposed = false;
}
