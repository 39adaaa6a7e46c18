// Starts a real `jupyter lab` with jupyter-sched (server and Lab extensions) for browser
// tests, and Debian's Chromium driven by playwright-core.
//
// Environment:
//   PYTHON         interpreter whose `jupyter lab` runs (default: .venv/bin/python)
//   CHROMIUM       browser binary (default: /usr/bin/chromium)
//   SCHED_LABEXT   folder of the built labextension to load (default: jupyter_sched/labextension;
//                  "installed" loads whatever the interpreter's environment has installed)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Tests write screenshots here (ignored by git); `make screenshots` copies them to
// docs/screenshots/, where the README and the documentation take them from.
export const SCREENSHOTS = join(REPO, 'ui-tests', 'screenshots');

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const sleep = ms => new Promise(ok => setTimeout(ok, ms));

/**
 * A running JupyterLab on a free loopback port with a token, whose root is a copy of
 * notebooks/ and whose settings, workspaces, scheduler data and runtime files live in a
 * temporary folder. `theme` is 'light' or 'dark'; `labextension` the built extension's
 * folder, or 'installed' for the one installed in `python`'s environment.
 */
export async function startLab({
  theme = 'light',
  python = process.env.PYTHON ?? join(REPO, '.venv', 'bin', 'python'),
  labextension = process.env.SCHED_LABEXT ?? join(REPO, 'jupyter_sched', 'labextension'),
  // false: rely on the jupyter_server_config.d file the package installs
  enableServerExtension = true,
  // the server's root folder, instead of a copy of notebooks/
  root: givenRoot = null,
  // variables added to (or replacing) the server's environment
  env: extraEnv = {},
  // false: the scheduler keeps its data in the Jupyter data dir, as with `jupyter lab`
  isolateScheduler = true
} = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'sched-ui-'));
  const root = givenRoot ?? join(tmp, 'root');
  if (!givenRoot) {
    cpSync(join(REPO, 'notebooks'), root, { recursive: true });
  }
  const settings = join(tmp, 'app-settings');
  const userSettings = join(tmp, 'user-settings');
  mkdirSync(settings, { recursive: true });
  // No "get notified about Jupyter news?" toast over the bottom right corner.
  const overrides = {
    '@jupyterlab/apputils-extension:notification': { fetchNews: 'false', checkForUpdates: false },
    '@jupyterlab/apputils-extension:themes': {
      theme: theme === 'dark' ? 'JupyterLab Dark' : 'JupyterLab Light'
    }
  };
  writeFileSync(join(settings, 'overrides.json'), JSON.stringify(overrides));

  const args = process.getuid?.() === 0 ? ['--allow-root'] : [];
  const labext = labextension;
  if (labext !== 'installed') {
    if (!existsSync(join(labext, 'package.json'))) {
      throw new Error(`no built labextension in ${labext}: run \`jlpm build\` first`);
    }
    const extensions = join(tmp, 'labextensions');
    mkdirSync(extensions);
    symlinkSync(labext, join(extensions, 'jupyter-sched'));
    args.push(`--LabApp.extra_labextensions_path=${extensions}`);
  }

  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const env = {
    ...process.env,
    ...(isolateScheduler ? { JUPYTER_SCHED_DATA_DIR: join(tmp, 'sched-data') } : {}),
    JUPYTER_RUNTIME_DIR: join(tmp, 'runtime'),
    JUPYTER_CONFIG_DIR: join(tmp, 'config'),
    JUPYTER_PLATFORM_DIRS: '1',
    PYTHONUNBUFFERED: '1',
    ...extraEnv
  };
  const proc = spawn(
    python,
    [
      '-m',
      'jupyterlab',
      '--no-browser',
      '--ServerApp.ip=127.0.0.1',
      `--ServerApp.port=${port}`,
      '--ServerApp.port_retries=0',
      `--IdentityProvider.token=${token}`,
      `--ServerApp.root_dir=${root}`,
      ...(enableServerExtension ? ["--ServerApp.jpserver_extensions={'jupyter_sched': True}"] : []),
      `--LabApp.app_settings_dir=${settings}`,
      `--LabApp.user_settings_dir=${userSettings}`,
      `--LabApp.workspaces_dir=${join(tmp, 'workspaces')}`,
      '--LabApp.news_url=None',
      ...args
    ],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true }
  );
  // Whatever happens to the test process, the server does not outlive it.
  const killOnExit = () => {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', killOnExit);
  let log = '';
  proc.stdout.on('data', d => (log += d));
  proc.stderr.on('data', d => (log += d));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) {
      throw new Error(`jupyter lab exited with ${proc.exitCode}:\n${log}`);
    }
    try {
      const r = await fetch(`${url}sched/api/health?token=${token}`);
      if (r.ok) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`jupyter lab did not answer within 60 s:\n${log}`);
    }
    await sleep(250);
  }

  return {
    url,
    token,
    root,
    tmp,
    log: () => log,
    /** Call the REST API directly (for checks the UI is not meant to show). */
    async api(path, init = {}) {
      const r = await fetch(`${url}sched/api/${path}`, {
        ...init,
        headers: {
          Authorization: `token ${token}`,
          'Content-Type': 'application/json',
          ...(init.headers ?? {})
        }
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    },
    async stop() {
      if (proc.exitCode === null) {
        process.kill(proc.pid, 'SIGTERM');
        const until = Date.now() + 30_000;
        while (proc.exitCode === null && Date.now() < until) {
          await sleep(200);
        }
        if (proc.exitCode === null) {
          process.kill(-proc.pid, 'SIGKILL');
        }
      }
      process.off('exit', killOnExit);
      rmSync(tmp, { recursive: true, force: true });
    }
  };
}

/** Debian's Chromium, headless, with a fresh profile (playwright makes a new one per launch). */
export async function launchBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  });
  return {
    browser,
    async close() {
      await browser.close();
    }
  };
}

/**
 * A page of `lab` whose console errors and uncaught exceptions are collected in
 * `errors`, and HTTP error answers in `httpErrors`.
 */
export async function openLab(browser, lab, { width = 1400, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on('console', msg => {
    if (msg.type() === 'error') {
      const where = msg.location()?.url;
      errors.push(`console: ${msg.text()}${where ? ` (${where})` : ''}`);
    }
  });
  page.on('pageerror', err => errors.push(`page: ${err.message}`));
  // Every HTTP error answer, as "STATUS METHOD URL".
  const httpErrors = [];
  page.on('response', response => {
    if (response.status() >= 400) {
      httpErrors.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
  await page.goto(`${lab.url}lab?token=${lab.token}`);
  await page.waitForSelector('#jupyterlab-splash', { state: 'detached', timeout: 60_000 });
  await page.waitForSelector('.jp-DirListing-item', { timeout: 30_000 });
  return { context, page, errors, httpErrors };
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, name);
}
