import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { identity } from '../src/i18n';
import { RunValuesSection, VALUE_TEXT_LIMIT, valueText } from '../src/runvalues';

const markup = (values: Record<string, unknown> | undefined): string =>
  renderToStaticMarkup(React.createElement(RunValuesSection, { values, _: identity }));

describe('a recorded value’s text', () => {
  it('is its compact JSON', () => {
    expect(valueText(70)).toEqual({ text: '70', cut: false });
    expect(valueText('EU')).toEqual({ text: '"EU"', cut: false });
    expect(valueText({ a: [1, 2], b: null })).toEqual({ text: '{"a":[1,2],"b":null}', cut: false });
  });

  it('is cut to the limit with an ellipsis when longer', () => {
    const long = valueText('x'.repeat(500));
    expect(long.cut).toBe(true);
    expect(Array.from(long.text)).toHaveLength(VALUE_TEXT_LIMIT);
    expect(long.text).toBe('"' + 'x'.repeat(VALUE_TEXT_LIMIT - 2) + '…');
    expect(valueText([1, 2, 3, 4, 5], 6)).toEqual({ text: '[1,2,…', cut: true });
  });

  it('is never cut inside a character of two UTF-16 units', () => {
    const { text } = valueText('😀'.repeat(10), 5);
    expect(text).toBe('"😀😀😀…');
  });
});

describe('the run view’s values section', () => {
  it('shows each value by name', () => {
    const html = markup({ rows: 70, region: 'EU', reported_for: '2024-05-01T06:00:00+00:00' });
    expect(html).toContain('<h2>Values</h2>');
    expect(html).toContain('<tr data-value="rows"><th scope="row"><code>rows</code></th>');
    expect(html).toContain('<code>70</code>');
    expect(html).toContain('<code>&quot;EU&quot;</code>');
    expect(html).toContain('<code>&quot;2024-05-01T06:00:00+00:00&quot;</code>');
  });

  it('gives a cut value its longer text as a tooltip', () => {
    const html = markup({ table: 'y'.repeat(300) });
    expect(html).toContain(`title="&quot;${'y'.repeat(300)}&quot;"`);
    expect(html).toContain(`<code>&quot;${'y'.repeat(VALUE_TEXT_LIMIT - 2)}…</code>`);
  });

  it('is absent when the run recorded nothing', () => {
    expect(markup(undefined)).toBe('');
    expect(markup({})).toBe('');
  });
});
