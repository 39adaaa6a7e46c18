import { describe, expect, it } from 'vitest';

import { identity } from '../src/i18n';

describe('identity gettext', () => {
  it('puts the arguments in place of %1, %2…, every time they occur', () => {
    expect(identity('every %1 at %2', 'Monday', '06:00')).toBe('every Monday at 06:00');
    expect(identity('%1 and %1', 'x')).toBe('x and x');
    expect(identity('no arguments')).toBe('no arguments');
  });
});
