/** The job and run views, opened in the main area. */
import { MainAreaWidget } from '@jupyterlab/apputils';

import { schedIcon } from './components';
import { BatchView } from './batchview';
import { JobView } from './jobview';
import { RunView } from './runview';
import { CompareView } from './compareview';

export type { DetailActions } from './liveview';
export { BatchView, CompareView, JobView, RunView };

/** A view of the main area. */
export type DetailView = JobView | RunView | CompareView | BatchView;

/** A main-area widget around a detail view. */
export function detailWidget(content: DetailView, label: string): MainAreaWidget<DetailView> {
  const widget = new MainAreaWidget({ content });
  widget.id = detailId(content);
  widget.title.label = label;
  widget.title.icon = schedIcon;
  widget.title.closable = true;
  return widget;
}

/** The id of the main-area widget of a detail view (one per job or run). */
export function detailId(content: DetailView): string {
  if (content instanceof BatchView) {
    return `jupyter-sched-batch-${content.batchId}`;
  }
  if (content instanceof CompareView) {
    return `jupyter-sched-compare-${content.runA}-${content.runB}`;
  }
  return content instanceof JobView
    ? `jupyter-sched-job-${content.jobId}`
    : `jupyter-sched-run-${content.runId}`;
}
