/**
 * jupyter-sched's JupyterLab extension: the "Scheduled notebooks" sidebar, the
 * "Schedule notebook…" commands (file browser context menu, notebook toolbar, palette),
 * job and run views, and the read-only drive of run outputs.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  Notification,
  ToolbarButton,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, TranslationBundle, nullTranslator } from '@jupyterlab/translation';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { Job, OutputFormat, Run, SchedAPI } from './api';
import { schedIcon } from './components';
import {
  BatchView,
  CompareView,
  DetailActions,
  DetailView,
  JobView,
  RunView,
  detailId,
  detailWidget
} from './detail';
import { RunOutputDrive, outputPath } from './drive';
import { showJobDialog } from './jobdialog';
import { SchedModel } from './model';
import { SchedPanel } from './panel';

const PLUGIN_ID = 'jupyter-sched:plugin';

export namespace CommandIDs {
  export const openPanel = 'jupyter-sched:open-panel';
  export const schedule = 'jupyter-sched:schedule';
  export const scheduleSelected = 'jupyter-sched:schedule-selected';
  export const openJob = 'jupyter-sched:open-job';
  export const openRun = 'jupyter-sched:open-run';
  export const refresh = 'jupyter-sched:refresh';
}

interface Preferences {
  refreshInterval: number;
  followInterval: number;
  defaultTimezone: string;
  outputFormats: OutputFormat[];
}

/** What the views, the panel and the commands ask of the extension. */
type Actions = DetailActions & {
  /** Open the create dialog, for `path` when given. */
  schedule(path?: string): void;
};

/** The extension's parts, as the activation steps share them. */
interface Parts {
  app: JupyterFrontEnd;
  trans: TranslationBundle;
  api: SchedAPI;
  model: SchedModel;
  prefs: Preferences;
}

interface Extension extends Parts {
  actions: Actions;
  /** Show a view in the main area (the one already open for its job or run, if any). */
  openDetail(content: DetailView, label: string): void;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Schedule notebooks and watch their runs from the sidebar.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry, ITranslator, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    fileBrowser: IDefaultFileBrowser | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyter_sched');
    const api = new SchedAPI(app.serviceManager.serverSettings);
    app.serviceManager.contents.addDrive(new RunOutputDrive(api));
    const model = new SchedModel(api);
    const prefs: Preferences = {
      refreshInterval: 2,
      followInterval: 0.5,
      defaultTimezone: '',
      outputFormats: ['ipynb']
    };
    const ext = extension({ app, trans, api, model, prefs }, docManager);

    const panel = new SchedPanel(model, ext.actions, trans);
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'jupyter-sched-panel');
    model.runFailed.connect((_, run) => notifyFailure(ext, run));
    model.start();

    addCommands(ext, panel.id, fileBrowser);
    if (palette) {
      const category = trans.__('Scheduled Notebooks');
      palette.addItem({ command: CommandIDs.schedule, category, args: { isPalette: true } });
      palette.addItem({ command: CommandIDs.openPanel, category });
      palette.addItem({ command: CommandIDs.refresh, category });
    }
    // The notebook toolbar button.
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new ToolbarExtension(app, trans.__('Schedule this notebook…'))
    );
    if (settingRegistry) {
      followSettings(settingRegistry, prefs, model);
    }
  }
};

/** The parts with the actions of the views and the panel: open views, outputs, the dialog. */
function extension(parts: Parts, docManager: IDocumentManager): Extension {
  const { app, trans, api, model } = parts;
  const tracker = new WidgetTracker<MainAreaWidget<DetailView>>({
    namespace: 'jupyter-sched'
  });
  const openDetail = (content: DetailView, label: string): void => {
    const existing = tracker.find(w => w.id === detailId(content));
    if (existing) {
      content.dispose();
      app.shell.activateById(existing.id);
      void existing.content.reload();
      return;
    }
    const widget = detailWidget(content, label);
    void tracker.add(widget);
    app.shell.add(widget, 'main');
    app.shell.activateById(widget.id);
  };
  const actions: Actions = {
    openJob: id => openDetail(new JobView(id, api, actions, trans), trans.__('Job')),
    openRun: id => openDetail(new RunView(id, api, actions, trans), trans.__('Run')),
    openBatch: (jobId, batchId) =>
      openDetail(new BatchView(jobId, batchId, api, actions, trans), trans.__('Batch')),
    openCompare: (a, b) =>
      openDetail(new CompareView(a, b, api, actions, trans), trans.__('Compare runs')),
    editJob: job => schedule(ext, undefined, job),
    openOutput: (run, cell) => openOutput(docManager, trans, run, cell),
    openNotebook: path => void docManager.openOrReveal(path),
    jobNames: () => model.jobNames,
    interval: () => model.interval,
    followInterval: () => model.followInterval,
    changed: () => void model.refresh(),
    schedule: path => void schedule(ext, path)
  };
  const ext: Extension = { ...parts, actions, openDetail };
  return ext;
}

/** Open the dialog (editing `job`, or for a new job of `path`); then show what it made. */
async function schedule(ext: Extension, path?: string, job?: Job): Promise<void> {
  const { app, trans, api, model, prefs, actions, openDetail } = ext;
  const result = await showJobDialog({
    api,
    trans,
    job,
    path,
    timezone: prefs.defaultTimezone,
    outputFormats: prefs.outputFormats,
    kernelNames: Object.keys(app.serviceManager.kernelspecs.specs?.kernelspecs ?? {}).sort(),
    jobs: model.jobs.map(j => ({ id: j.id, name: j.name }))
  });
  if (!result) {
    return;
  }
  void model.refresh();
  if (job) {
    Notification.success(trans.__('Saved “%1”.', result.job.name), { autoClose: 3000 });
    return;
  }
  Notification.success(trans.__('Scheduled “%1”.', result.job.name), { autoClose: 3000 });
  if (result.run?.batch_id) {
    actions.openBatch(result.job.id, result.run.batch_id); // a sweep: its summary, live
  } else if (result.run) {
    openDetail(new RunView(result.run.id, api, actions, trans), trans.__('Run'));
  } else {
    openDetail(new JobView(result.job.id, api, actions, trans), result.job.name);
  }
}

/** Open the executed notebook of `run` read-only, at cell `cell` when given. */
async function openOutput(
  docManager: IDocumentManager,
  trans: TranslationBundle,
  run: Run,
  cell?: number | null
): Promise<void> {
  const widget = docManager.openOrReveal(
    outputPath(run.id, run.notebook),
    'Notebook',
    undefined,
    { mode: 'tab-after' },
    { shouldStart: false, canStart: false }
  );
  if (!(widget instanceof NotebookPanel)) {
    return;
  }
  await widget.context.ready;
  if (widget.content.model) {
    widget.content.model.readOnly = true;
  }
  widget.title.caption = trans.__('Output of run %1 (read-only)', run.id);
  if (cell !== undefined && cell !== null) {
    await widget.revealed;
    const index = Math.max(0, Math.min(cell, widget.content.widgets.length - 1));
    widget.content.activeCellIndex = index;
    widget.content.deselectAll();
    const target = widget.content.widgets[index];
    await widget.content.scrollToItem(index, 'center').catch(() => undefined);
    target?.node.classList.add('jp-sched-failing-cell');
  }
}

/** A notification that `run` failed, timed out or was lost, with a button to open it. */
function notifyFailure(ext: Extension, run: Run): void {
  const { trans, model, actions } = ext;
  const name = model.job(run.job_id)?.name ?? run.notebook;
  const message =
    run.status === 'timed_out'
      ? trans.__('The run of “%1” timed out.', name)
      : run.status === 'lost'
        ? trans.__('The run of “%1” was lost.', name)
        : trans.__('The run of “%1” failed.', name);
  const detail = run.error?.ename
    ? ` ${run.error.ename}${run.error.evalue ? `: ${run.error.evalue}` : ''}`
    : '';
  Notification.error(message + detail, {
    actions: [
      {
        label: trans.__('Open run'),
        caption: trans.__('Open the run’s details'),
        callback: () => actions.openRun(run.id)
      }
    ],
    data: { runId: run.id },
    // The default (0) would only add it to the notification center, without a toast.
    autoClose: false
  });
}

function addCommands(
  ext: Extension,
  panelId: string,
  fileBrowser: IDefaultFileBrowser | null
): void {
  const { app, trans, model, actions } = ext;
  const { commands, shell } = app;
  commands.addCommand(CommandIDs.openPanel, {
    label: trans.__('Scheduled Notebooks'),
    caption: trans.__('Show the scheduled notebooks and their runs'),
    icon: schedIcon,
    execute: () => shell.activateById(panelId)
  });
  commands.addCommand(CommandIDs.refresh, {
    label: trans.__('Refresh Scheduled Notebooks'),
    execute: () => model.refresh()
  });
  const currentNotebookPath = (): string | undefined => {
    const current = shell.currentWidget;
    if (current instanceof NotebookPanel && !current.context.path.includes(':')) {
      return current.context.path;
    }
    return undefined;
  };
  commands.addCommand(CommandIDs.schedule, {
    label: args =>
      args.path || args.isPalette ? trans.__('Schedule Notebook…') : trans.__('Schedule notebook…'),
    caption: trans.__('Run this notebook now, later or on a schedule, with its parameters'),
    icon: args => (args.isPalette ? undefined : schedIcon),
    execute: args => schedule(ext, (args.path as string | undefined) ?? currentNotebookPath())
  });
  const selected = () => fileBrowser?.selectedItems().next();
  commands.addCommand(CommandIDs.scheduleSelected, {
    label: trans.__('Schedule notebook…'),
    caption: trans.__('Run this notebook now, later or on a schedule, with its parameters'),
    icon: schedIcon,
    isVisible: () => {
      const item = selected();
      return !!item && !item.done && item.value.type === 'notebook';
    },
    execute: () => {
      const item = selected();
      if (item && !item.done) {
        return schedule(ext, item.value.path);
      }
    }
  });
  commands.addCommand(CommandIDs.openJob, {
    label: trans.__('Open Scheduled Job'),
    execute: args => actions.openJob(args.id as string)
  });
  commands.addCommand(CommandIDs.openRun, {
    label: trans.__('Open Notebook Run'),
    execute: args => actions.openRun(args.id as string)
  });
}

/** Apply the settings registry's preferences now and whenever they change. */
function followSettings(registry: ISettingRegistry, prefs: Preferences, model: SchedModel): void {
  const apply = (settings: ISettingRegistry.ISettings): void => {
    const seconds = Number(settings.get('refreshInterval').composite);
    prefs.refreshInterval = Number.isFinite(seconds) && seconds > 0 ? seconds : 2;
    const follow = Number(settings.get('followInterval').composite);
    prefs.followInterval = Number.isFinite(follow) && follow > 0 ? follow : 0.5;
    prefs.defaultTimezone = String(settings.get('defaultTimezone').composite ?? '');
    const formats = settings.get('defaultOutputFormats').composite;
    prefs.outputFormats = Array.isArray(formats) ? (formats as OutputFormat[]) : ['ipynb'];
    model.interval = prefs.refreshInterval * 1000;
    model.followInterval = prefs.followInterval * 1000;
  };
  registry
    .load(PLUGIN_ID)
    .then(settings => {
      apply(settings);
      settings.changed.connect(apply);
    })
    .catch(reason => console.warn('jupyter-sched: cannot load settings', reason));
}

/** Adds a "Schedule" button to every notebook's toolbar. */
class ToolbarExtension implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(
    private app: JupyterFrontEnd,
    private tooltip: string
  ) {}

  createNew(panel: NotebookPanel): IDisposable {
    if (panel.context.path.includes(':')) {
      return new DisposableDelegate(() => undefined); // run outputs and other drives
    }
    const button = new ToolbarButton({
      icon: schedIcon,
      tooltip: this.tooltip,
      className: 'jp-sched-toolbar-button',
      onClick: () =>
        void this.app.commands.execute(CommandIDs.schedule, { path: panel.context.path })
    });
    panel.toolbar.insertItem(10, 'jupyter-sched:schedule', button);
    return new DisposableDelegate(() => button.dispose());
  }
}

export default plugin;
