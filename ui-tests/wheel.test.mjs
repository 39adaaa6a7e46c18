// Issue 5, acceptance 3: the wheel carries the prebuilt Lab extension. Build the wheel
// (or take $SCHED_WHEEL), install it into a fresh virtualenv, check that
// `jupyter labextension list` shows the extension enabled, and that a browser sees the
// panel of a `jupyter lab` started from that virtualenv — no Node.js build step involved.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { REPO, launchBrowser, openLab, screenshotPath, startLab } from './lab.mjs';

const hostPython = process.env.PYTHON ?? join(REPO, '.venv', 'bin', 'python');
let tmp;
let python;

before(
  () => {
    tmp = mkdtempSync(join(tmpdir(), 'sched-wheel-'));
    let wheel = process.env.SCHED_WHEEL;
    if (!wheel) {
      const dist = join(tmp, 'dist');
      execFileSync(hostPython, ['-m', 'pip', 'wheel', '--no-deps', '-q', '-w', dist, REPO], {
        stdio: 'inherit'
      });
      wheel = join(
        dist,
        readdirSync(dist).find(f => f.endsWith('.whl'))
      );
    }
    const venv = join(tmp, 'venv');
    execFileSync(hostPython, ['-m', 'venv', venv]);
    python = join(venv, 'bin', 'python');
    execFileSync(python, ['-m', 'pip', 'install', '-q', wheel, 'jupyterlab>=4.6,<5'], {
      stdio: ['ignore', 'inherit', 'inherit']
    });
  },
  { timeout: 600_000 }
);

after(() => rmSync(tmp, { recursive: true, force: true }));

test('jupyter labextension list shows jupyter-sched enabled', () => {
  const bin = join(tmp, 'venv', 'bin');
  // The listing goes to stderr: merge the two. PATH starts with the new environment, so
  // that no other environment's `jupyter-labextension` answers.
  const out = execFileSync('sh', ['-c', `"${join(bin, 'jupyter-labextension')}" list 2>&1`], {
    encoding: 'utf-8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }
  });
  // eslint-disable-next-line no-control-regex
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  assert.ok(plain.includes(join(tmp, 'venv', 'share', 'jupyter', 'labextensions')), plain);
  assert.match(plain, /jupyter-sched v\S+ enabled OK \(python, jupyter-sched\)/);
});

test('a browser sees the panel of the installed extension', { timeout: 180_000 }, async () => {
  const lab = await startLab({ python, labextension: 'installed', enableServerExtension: false });
  const browser = await launchBrowser();
  try {
    const { page, errors } = await openLab(browser.browser, lab);
    await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
    await page.locator('#jupyter-sched-panel [data-empty="jobs"]').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: screenshotPath('wheel-panel.png') });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await lab.stop();
  }
});
