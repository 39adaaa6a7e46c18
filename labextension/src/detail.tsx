/** The job and run views, opened in the main area. */
import { MainAreaWidget } from '@jupyterlab/apputils';

import { schedIcon } from './components';
import { JobView } from './jobview';
import { RunView } from './runview';

export type { DetailActions } from './liveview';
export { JobView, RunView };

/** A main-area widget around a detail view. */
export function detailWidget(
  content: JobView | RunView,
  label: string
): MainAreaWidget<JobView | RunView> {
  const widget = new MainAreaWidget({ content });
  widget.id = detailId(content);
  widget.title.label = label;
  widget.title.icon = schedIcon;
  widget.title.closable = true;
  return widget;
}

/** The id of the main-area widget of a detail view (one per job or run). */
export function detailId(content: JobView | RunView): string {
  return content instanceof JobView
    ? `jupyter-sched-job-${content.jobId}`
    : `jupyter-sched-run-${content.runId}`;
}
