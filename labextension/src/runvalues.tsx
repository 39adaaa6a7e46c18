/**
 * The run view's table of the values a run recorded (`record(name, value)` in the
 * notebook): each name with its JSON, long JSON cut short (more of it as a tooltip).
 */
import * as React from 'react';

import type { Gettext } from './i18n';

/** Characters of a value's JSON the table shows before cutting it short. */
export const VALUE_TEXT_LIMIT = 120;
/** Characters of a cut value's JSON its tooltip shows. */
const TOOLTIP_LIMIT = 2000;

/**
 * A recorded value as compact JSON, cut to `limit` characters with an ellipsis when longer
 * (never inside a character made of two UTF-16 units).
 */
export function valueText(
  value: unknown,
  limit: number = VALUE_TEXT_LIMIT
): { text: string; cut: boolean } {
  const json = JSON.stringify(value) ?? String(value);
  const chars = Array.from(json);
  if (chars.length <= limit) {
    return { text: json, cut: false };
  }
  return { text: chars.slice(0, Math.max(limit - 1, 0)).join('') + '…', cut: true };
}

/** The run's recorded values by name; nothing when it recorded none. */
export function RunValuesSection(props: {
  values: Record<string, unknown> | undefined;
  _: Gettext;
}): JSX.Element | null {
  const entries = Object.entries(props.values ?? {});
  if (!entries.length) {
    return null;
  }
  return (
    <section className="jp-sched-detail-section" data-section="run-values">
      <h2>{props._('Values')}</h2>
      <table className="jp-sched-table jp-sched-params">
        <tbody>
          {entries.map(([name, value]) => {
            const { text, cut } = valueText(value);
            return (
              <tr key={name} data-value={name}>
                <th scope="row">
                  <code>{name}</code>
                </th>
                <td title={cut ? valueText(value, TOOLTIP_LIMIT).text : undefined}>
                  <code>{text}</code>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
