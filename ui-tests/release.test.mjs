// The release, as users get it, in one fresh virtualenv:
//  1. `python -m build` makes the sdist and the wheel (the wheel is built from the sdist,
//     so it carries the production build of the panel); `twine check` passes.
//  2. The wheel, installed with `pip install 'jupyter-sched[lab]'` on a PATH without
//     Node.js: `jupyter labextension list` shows the panel, a browser sees it, and a
//     PostgreSQL URL without the `postgres` extra gets one line naming the extra, from the
//     CLI and from the server.
//  3. Binder: a second fresh virtualenv gets what binder/ describes, in repo2docker's
//     order (requirements.txt, postBuild, start), and Lab then shows the job `start`
//     scheduled with its first run succeeded, which the CLI sees too.
// $SCHED_DIST (a folder with a built sdist and wheel) skips the build; the build uses
// the development virtualenv's build backend (`--no-isolation`), `make dist` a new one.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { REPO, launchBrowser, openLab, screenshotPath, startLab } from './lab.mjs';

const hostPython = process.env.PYTHON ?? join(REPO, '.venv', 'bin', 'python');
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf-8')).version;
const sleep = ms => new Promise(ok => setTimeout(ok, ms));

let tmp;
let dist;
let venv;
let bin;
let python;

/** Run `file` with `args`: its exit code, standard output and standard error. */
function run(file, args, { env = process.env, cwd = REPO } = {}) {
  const result = spawnSync(file, args, { env, cwd, encoding: 'utf-8', maxBuffer: 64 << 20 });
  if (result.error) {
    throw result.error;
  }
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The virtualenv's environment: its bin/ alone on PATH (so no Node.js), unless `path`. */
function venvEnv(extra = {}, path = bin) {
  const env = { ...process.env, PATH: path, ...extra };
  for (const name of Object.keys(env)) {
    if (name.startsWith('JUPYTER_SCHED_')) {
      delete env[name];
    }
  }
  return env;
}

before(
  () => {
    tmp = mkdtempSync(join(tmpdir(), 'sched-release-'));
    dist = process.env.SCHED_DIST;
    if (!dist) {
      dist = join(tmp, 'dist');
      // The development virtualenv has the build backend and its plugins: no new
      // environment per build (what it builds is the same sdist and wheel).
      execFileSync(hostPython, ['-m', 'build', '--no-isolation', '--outdir', dist, REPO], {
        env: { ...process.env, PATH: `${join(REPO, '.venv', 'bin')}:${process.env.PATH}` },
        stdio: ['ignore', 'ignore', 'inherit']
      });
    }
    venv = join(tmp, 'venv');
    bin = join(venv, 'bin');
    python = join(bin, 'python');
    execFileSync(hostPython, ['-m', 'venv', venv]);
  },
  { timeout: 1_200_000 }
);

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('the release artifacts', () => {
  test('python -m build made an sdist and a wheel that twine check accepts', () => {
    const files = readdirSync(dist).sort();
    assert.deepEqual(files, [
      `jupyter_sched-${VERSION}-py3-none-any.whl`,
      `jupyter_sched-${VERSION}.tar.gz`
    ]);
    const twine = run(join(REPO, '.venv', 'bin', 'twine'), [
      'check',
      '--strict',
      ...files.map(f => join(dist, f))
    ]);
    assert.equal(twine.code, 0, twine.stdout + twine.stderr);
  });

  test('the wheel carries the production build of the panel and the metadata', () => {
    const wheel = join(dist, `jupyter_sched-${VERSION}-py3-none-any.whl`);
    const script = [
      'import sys, zipfile',
      'z = zipfile.ZipFile(sys.argv[1])',
      'print("\\n".join(z.namelist()))',
      'print("----")',
      'print(z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode())'
    ].join('\n');
    const out = execFileSync(hostPython, ['-c', script, wheel], { encoding: 'utf-8' });
    const [names, metadata] = out.split('----\n');
    const panel = names.split('\n').filter(n => n.includes('labextensions/jupyter-sched/'));
    assert.ok(
      panel.some(n => n.endsWith('/static/style.js')),
      names
    );
    assert.ok(
      panel.some(n => n.endsWith('/install.json')),
      names
    );
    // A development build has source maps and no licence file; a production one the reverse.
    assert.deepEqual(
      panel.filter(n => n.endsWith('.map')),
      []
    );
    assert.ok(
      panel.some(n => n.endsWith('third-party-licenses.json')),
      names
    );
    assert.match(metadata, new RegExp(`^Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
    for (const classifier of [
      'Framework :: Jupyter :: JupyterLab :: 4',
      'Framework :: Jupyter :: JupyterLab :: Extensions',
      'Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt'
    ]) {
      assert.ok(metadata.includes(`Classifier: ${classifier}\n`), classifier);
    }
    for (const extra of ['lab', 'examples', 'postgres', 'hub']) {
      assert.match(metadata, new RegExp(`^Provides-Extra: ${extra}$`, 'm'));
    }
  });
});

describe('the wheel in a new virtualenv, without Node.js', () => {
  before(
    () => {
      const wheel = join(dist, `jupyter_sched-${VERSION}-py3-none-any.whl`);
      execFileSync(python, ['-m', 'pip', 'install', '-q', `${wheel}[lab]`], {
        env: venvEnv(),
        stdio: ['ignore', 'ignore', 'inherit']
      });
    },
    { timeout: 600_000 }
  );

  test('no Node.js on the PATH the tests give the virtualenv', () => {
    const which = run(python, ['-c', 'import shutil; print(shutil.which("node"))'], {
      env: venvEnv()
    });
    assert.equal(which.stdout.trim(), 'None');
  });

  test('jupyter labextension list shows jupyter-sched enabled', () => {
    const out = run(join(bin, 'jupyter-labextension'), ['list'], { env: venvEnv() });
    // eslint-disable-next-line no-control-regex
    const plain = (out.stdout + out.stderr).replace(/\x1b\[[0-9;]*m/g, '');
    assert.ok(plain.includes(join(venv, 'share', 'jupyter', 'labextensions')), plain);
    assert.match(plain, /jupyter-sched v\S+ enabled OK \(python, jupyter-sched\)/);
  });

  test('a browser sees the panel of the installed extension', { timeout: 180_000 }, async () => {
    const lab = await startLab({
      python,
      labextension: 'installed',
      enableServerExtension: false,
      env: { PATH: bin }
    });
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

  test('PostgreSQL without the postgres extra: one line from the CLI', () => {
    const url = 'postgresql+psycopg://sched@127.0.0.1:9/sched';
    const out = run(join(bin, 'jupyter-sched'), ['--db-url', url, 'jobs', 'list'], {
      env: venvEnv({ HOME: join(tmp, 'home-cli') })
    });
    assert.equal(out.code, 4, out.stdout + out.stderr);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
    assert.ok(out.stderr.includes("pip install 'jupyter-sched[postgres]'"), out.stderr);
  });

  test('PostgreSQL without the postgres extra: one line in the server log, 503 from the API', async () => {
    const home = join(tmp, 'home-server');
    mkdirSync(home, { recursive: true });
    const token = 'release-test-token';
    const port = 20000 + Math.floor(Math.random() * 20000);
    const server = spawn(
      join(bin, 'jupyter-server'),
      [
        '--no-browser',
        '--ServerApp.ip=127.0.0.1',
        `--ServerApp.port=${port}`,
        '--ServerApp.port_retries=0',
        `--IdentityProvider.token=${token}`,
        `--ServerApp.root_dir=${home}`,
        '--SchedApp.db_url=postgresql+psycopg://sched@127.0.0.1:9/sched',
        ...(process.getuid?.() === 0 ? ['--allow-root'] : [])
      ],
      { env: venvEnv({ HOME: home }), stdio: ['ignore', 'pipe', 'pipe'], detached: true }
    );
    let log = '';
    server.stdout.on('data', d => (log += d));
    server.stderr.on('data', d => (log += d));
    try {
      let answer = null;
      for (const deadline = Date.now() + 90_000; Date.now() < deadline && !answer;) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/sched/api/jobs?token=${token}`);
          answer = { status: r.status, body: await r.json() };
        } catch {
          await sleep(250);
        }
      }
      assert.ok(answer, `the server did not answer:\n${log}`);
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.equal(answer.body.reason, 'missing_dependency');
      assert.ok(answer.body.message.includes("pip install 'jupyter-sched[postgres]'"));
      const lines = log.split('\n').filter(l => l.includes('jupyter-sched'));
      const off = lines.filter(l => l.includes('jupyter-sched is off:'));
      assert.equal(off.length, 1, log);
      assert.ok(off[0].includes("pip install 'jupyter-sched[postgres]'"), off[0]);
      assert.ok(!log.includes('Traceback'), log);
    } finally {
      const exited = new Promise(ok => server.once('exit', ok));
      process.kill(-server.pid, 'SIGKILL');
      await exited;
    }
  });
});

describe('Binder: binder/ installed into a fresh virtualenv, as repo2docker does', () => {
  let env;
  let binderBin;

  before(
    () => {
      // A virtualenv of its own (nothing of the wheel's), as a Binder image starts from.
      const binderVenv = join(tmp, 'binder-venv');
      execFileSync(hostPython, ['-m', 'venv', binderVenv]);
      binderBin = join(binderVenv, 'bin');
      // Binder's user has the repository as home; here a home of its own, the repository
      // as working directory (requirements.txt installs `.`), and Node.js on the PATH as
      // repo2docker's images have.
      env = venvEnv(
        { HOME: join(tmp, 'binder-home'), JUPYTER_PLATFORM_DIRS: '1' },
        `${binderBin}:${process.env.PATH}`
      );
      mkdirSync(env.HOME, { recursive: true });
      const requirements = join(REPO, 'binder', 'requirements.txt');
      const steps = [
        [join(binderBin, 'python'), ['-m', 'pip', 'install', '-q', '-r', requirements]],
        [join(REPO, 'binder', 'postBuild'), []],
        [join(REPO, 'binder', 'start'), ['true']]
      ];
      for (const [file, args] of steps) {
        execFileSync(file, args, { env, cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
      }
    },
    { timeout: 900_000 }
  );

  test(
    'Lab shows the job start scheduled, and its first run succeeds',
    { timeout: 300_000 },
    async () => {
      const lab = await startLab({
        python: join(binderBin, 'python'),
        labextension: 'installed',
        enableServerExtension: false,
        root: REPO,
        env,
        isolateScheduler: false
      });
      const browser = await launchBrowser();
      try {
        const { page, errors } = await openLab(browser.browser, lab);
        await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
        const panel = page.locator('#jupyter-sched-panel');
        await panel
          .locator('li.jp-sched-job', { hasText: 'Sales report (every minute)' })
          .waitFor({ timeout: 30_000 });
        await panel
          .locator('li.jp-sched-run[data-status="succeeded"]')
          .first()
          .waitFor({ timeout: 240_000 });
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
        await lab.stop();
      }
      // The command line sees the same scheduler as the server.
      const listed = run(join(binderBin, 'jupyter'), ['sched', 'runs', 'list', '--json'], {
        env
      });
      assert.equal(listed.code, 0, listed.stderr);
      const runs = JSON.parse(listed.stdout).runs;
      assert.ok(
        runs.some(r => r.notebook === 'notebooks/sales_report.ipynb' && r.status === 'succeeded'),
        listed.stdout
      );
    }
  );
});
