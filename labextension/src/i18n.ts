/**
 * Translation: the views take the translator's gettext as `_`; pure modules default to
 * {@link identity}, so they run in tests without JupyterLab.
 */

export type Gettext = (msgid: string, ...args: unknown[]) => string;

/** gettext without a translation: `%1`, `%2`... replaced by the arguments. */
export const identity: Gettext = (msgid, ...args) =>
  args.reduce<string>((text, arg, i) => text.split(`%${i + 1}`).join(String(arg)), msgid);
