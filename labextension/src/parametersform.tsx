/** The dialog's parameters form, built from the notebook's parameters cell. */
import * as React from 'react';

import type { NotebookParameter } from './api';
import { Field } from './components';
import type { Gettext } from './i18n';
import { parameterInput, parameterText } from './validation';

export function ParametersForm(props: {
  /** The parameters the notebook declares. */
  declared: NotebookParameter[];
  /** Parameter name → text as typed. */
  texts: Record<string, string>;
  errors: Record<string, string>;
  loading: boolean;
  /** Whether a notebook is chosen (else there is nothing to read parameters from). */
  hasNotebook: boolean;
  onChange: (name: string, text: string) => void;
  _: Gettext;
}): JSX.Element {
  const { declared, texts, errors, onChange, _ } = props;
  return (
    <fieldset className="jp-sched-fieldset" data-section="parameters">
      <legend>{_('Parameters')}</legend>
      {props.loading ? (
        <div className="jp-sched-muted">{_('Reading the notebook’s parameters cell…')}</div>
      ) : declared.length ? (
        declared.map(p => (
          <ParameterInput
            key={p.name}
            param={p}
            text={texts[p.name] ?? ''}
            error={errors[`parameters.${p.name}`]}
            onChange={text => onChange(p.name, text)}
            _={_}
          />
        ))
      ) : (
        <div className="jp-sched-muted">
          {props.hasNotebook
            ? _('This notebook has no cell tagged “parameters”: it runs as it is.')
            : _('Choose a notebook to see its parameters.')}
        </div>
      )}
      {errors.parameters && <div className="jp-sched-error">{errors.parameters}</div>}
    </fieldset>
  );
}

/** One parameter: a select for booleans, a JSON text area for lists, dicts and others. */
function ParameterInput(props: {
  param: NotebookParameter;
  text: string;
  error?: string;
  onChange: (text: string) => void;
  _: Gettext;
}): JSX.Element {
  const { param, text, error, onChange, _ } = props;
  const input = parameterInput(param.type);
  const hint = (
    <>
      {param.help && <span>{param.help} · </span>}
      {_('default')} <code>{parameterText(param.type, param.default)}</code>
    </>
  );
  const common = {
    name: `param-${param.name}`,
    'data-param': param.name,
    value: text,
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) =>
      onChange(e.target.value)
  };
  let control: JSX.Element;
  if (input === 'boolean') {
    control = (
      <select className="jp-mod-styled" {...common}>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  } else if (input === 'json') {
    control = (
      <textarea
        className="jp-mod-styled jp-sched-json"
        {...common}
        spellCheck={false}
        rows={Math.min(6, Math.max(1, text.split('\n').length))}
      />
    );
  } else {
    control = (
      <input
        className="jp-mod-styled"
        {...common}
        type="text"
        inputMode={input === 'integer' ? 'numeric' : input === 'number' ? 'decimal' : undefined}
      />
    );
  }
  return (
    <Field
      label={`${param.name} (${param.type})`}
      field={`parameters.${param.name}`}
      error={error}
      hint={hint}
    >
      {control}
    </Field>
  );
}
