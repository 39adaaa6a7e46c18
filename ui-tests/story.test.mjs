// The user story of the JupyterLab panel (issue 5, acceptance 1, 2 and 5), in the light
// and the dark theme, against a real `jupyter lab` with the embedded scheduler:
// schedule a notebook from the file browser with a changed parameter and a cron preview,
// run it now and watch it go running → succeeded, open its output, inspect a failing
// run at its failing cell, cancel a slow run, pause and resume, see the server's message
// for an invalid cron next to the field, and the "retrying…" banner when the server goes.
// Screenshots go to ui-tests/screenshots/ (`make screenshots` publishes them to
// docs/screenshots/); any console error fails the story.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, openLab, screenshotPath, startLab } from './lab.mjs';

const STEP = 30_000;

/** Record, in the page, every status each run row of the panel shows (every 100 ms). */
async function recordStatuses(page) {
  await page.evaluate(() => {
    window.__seen = {};
    setInterval(() => {
      for (const el of document.querySelectorAll(
        '#jupyter-sched-panel li.jp-sched-run[data-status]'
      )) {
        const seen = (window.__seen[el.dataset.runId] ??= []);
        if (seen[seen.length - 1] !== el.dataset.status) {
          seen.push(el.dataset.status);
        }
      }
    }, 100);
  });
}

const seenStatuses = (page, runId) => page.evaluate(id => window.__seen[id] ?? [], runId);

async function openPanel(page) {
  const panel = page.locator('#jupyter-sched-panel');
  if (!(await panel.isVisible())) {
    await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
  }
  await panel.waitFor();
  return panel;
}

async function openFileBrowser(page) {
  const browser = page.locator('#filebrowser');
  if (!(await browser.isVisible())) {
    await page.click('.jp-SideBar [data-id="filebrowser"]');
  }
  await browser.waitFor();
}

/** Right-click `file` in the file browser → "Schedule notebook…"; the dialog. */
async function scheduleFromFileBrowser(page, file) {
  await openFileBrowser(page);
  await page.click(`.jp-DirListing-item[title^="Name: ${file}"]`, { button: 'right' });
  await page.click('.lm-Menu-item:has-text("Schedule notebook…")');
  const dialog = page.locator('.jp-sched-dialog');
  await dialog.waitFor();
  // The parameters form is built from the notebook's parameters cell.
  await dialog.locator('[data-param]').first().waitFor();
  return dialog;
}

async function setParameter(dialog, name, value) {
  const input = dialog.locator(`[data-param="${name}"]`);
  await input.fill(value);
}

/** The status of a run in the panel. */
const panelRun = (page, runId) =>
  page.locator(`#jupyter-sched-panel li.jp-sched-run[data-run-id="${runId}"]`);

/** The view of run `runId` in the main area. */
const runView = (page, runId) =>
  page.locator(`.jp-sched-run-detail .jp-sched-detail-body[data-run-id="${runId}"]`);

/** The ids of the runs whose views are open. */
const openRunIds = page =>
  page.evaluate(() =>
    [...document.querySelectorAll('.lm-TabBar-tab[data-id^="jupyter-sched-run-"]')].map(t =>
      t.dataset.id.slice('jupyter-sched-run-'.length)
    )
  );

/** Wait for the view of a run other than `known` to open; its id. */
async function newRunView(page, known) {
  const handle = await page.waitForFunction(
    ids => {
      const open = [
        ...document.querySelectorAll('.lm-TabBar-tab[data-id^="jupyter-sched-run-"]')
      ].map(t => t.dataset.id.slice('jupyter-sched-run-'.length));
      return open.find(id => !ids.includes(id));
    },
    known,
    { timeout: 10_000, polling: 100 }
  );
  const runId = await handle.jsonValue();
  await runView(page, runId).waitFor();
  return runId;
}

async function waitStatus(page, runId, statuses, timeout = 120_000) {
  const wanted = Array.isArray(statuses) ? statuses : [statuses];
  await page.waitForFunction(
    ([id, ok]) => {
      const el = document.querySelector(
        `#jupyter-sched-panel li.jp-sched-run[data-run-id="${id}"]`
      );
      return el && ok.includes(el.dataset.status);
    },
    [runId, wanted],
    { timeout, polling: 100 }
  );
}

function story(theme) {
  const suffix = theme === 'dark' ? '-dark' : '';
  describe(`the scheduler in JupyterLab (${theme} theme)`, { timeout: 600_000 }, () => {
    let lab;
    let browser;
    let page;
    let errors;
    let httpErrors;
    const ids = {};

    before(async () => {
      lab = await startLab({ theme });
      browser = await launchBrowser();
      ({ page, errors, httpErrors } = await openLab(browser.browser, lab));
      await recordStatuses(page);
    });

    after(async () => {
      await browser?.close();
      await lab?.stop();
    });

    test(
      'the panel tells a new user how to schedule the first notebook',
      { timeout: STEP },
      async () => {
        if (theme === 'dark') {
          assert.equal(await page.evaluate(() => document.body.dataset.jpThemeLight), 'false');
        }
        const panel = await openPanel(page);
        const empty = panel.locator('[data-empty="jobs"]');
        await empty.waitFor();
        assert.match(await empty.innerText(), /Schedule notebook…/);
        await page.screenshot({ path: screenshotPath(`panel-empty${suffix}.png`) });
        // The settings (refresh and follow intervals, timezone, output formats) are in the
        // registry.
        const settings = await page.evaluate(async token => {
          const r = await fetch('/lab/api/settings/jupyter-sched:plugin', {
            headers: { Authorization: `token ${token}` }
          });
          return r.json();
        }, lab.token);
        assert.equal(settings.schema.properties.refreshInterval.default, 2);
        assert.equal(settings.schema.properties.followInterval.default, 0.5);
        assert.deepEqual(Object.keys(settings.schema.properties).sort(), [
          'defaultOutputFormats',
          'defaultTimezone',
          'followInterval',
          'refreshInterval'
        ]);
      }
    );

    test(
      'the notebook toolbar button and the command palette open the dialog',
      { timeout: 60_000 },
      async () => {
        await openFileBrowser(page);
        await page.dblclick('.jp-DirListing-item[title^="Name: hello.ipynb"]');
        const notebook = page.locator('.jp-NotebookPanel:visible');
        await notebook.locator('.jp-sched-toolbar-button').click();
        let dialog = page.locator('.jp-sched-dialog');
        await dialog.locator('[data-param="name"]').waitFor();
        assert.equal(await dialog.locator('input[name="notebook"]').inputValue(), 'hello.ipynb');
        assert.equal(await dialog.locator('[data-param="name"]').inputValue(), 'world');
        await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();
        await dialog.waitFor({ state: 'detached' });

        const palette = page.locator('#command-palette');
        // The menu sometimes closes before the modal palette has taken focus: try again.
        for (let attempt = 0; attempt < 3; attempt++) {
          await page.click('.lm-MenuBar-item:has-text("View")');
          await page.click('.lm-Menu-item:has-text("Activate Command Palette")');
          const shown = await palette
            .locator('input')
            .waitFor({ state: 'visible', timeout: 5000 })
            .then(() => true)
            .catch(() => false);
          if (shown) {
            break;
          }
        }
        await palette.locator('input').fill('Schedule Notebook');
        await palette
          .locator('.lm-CommandPalette-item:has-text("Schedule Notebook…")')
          .first()
          .click();
        dialog = page.locator('.jp-sched-dialog');
        await dialog.locator('[data-param="name"]').waitFor();
        assert.equal(await dialog.locator('input[name="notebook"]').inputValue(), 'hello.ipynb');
        await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();
        await dialog.waitFor({ state: 'detached' });
      }
    );

    test(
      'an invalid cron shows the server’s message next to the field, and nothing typed is lost',
      { timeout: 60_000 },
      async () => {
        const dialog = await scheduleFromFileBrowser(page, 'sales_report.ipynb');
        assert.equal(
          await dialog.locator('input[name="notebook"]').inputValue(),
          'sales_report.ipynb'
        );
        await setParameter(dialog, 'region', 'Mars');
        await dialog.locator('label.jp-sched-segment:has-text("Cron")').click();
        await dialog.locator('input[name="cron"]').fill('61 * * * *');
        const expected = await lab.api('preview', {
          method: 'POST',
          body: JSON.stringify({ trigger: { kind: 'cron', cron: '61 * * * *' } })
        });
        assert.ok([400, 422].includes(expected.status), `preview answered ${expected.status}`);
        assert.equal(expected.body.field, 'trigger.cron');
        const error = dialog.locator('[data-error-for="trigger.cron"]');
        await error.waitFor({ timeout: 5000 });
        assert.equal(await error.innerText(), expected.body.message);
        // Create anyway: the server refuses, the dialog stays with everything typed.
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await page.waitForTimeout(500);
        await error.waitFor();
        assert.equal(await error.innerText(), expected.body.message);
        assert.equal(await dialog.locator('[data-param="region"]').inputValue(), 'Mars');
        assert.equal(await dialog.locator('input[name="cron"]').inputValue(), '61 * * * *');
        await page.screenshot({ path: screenshotPath(`dialog-invalid-cron${suffix}.png`) });
        await dialog.locator('.jp-Dialog-button.jp-mod-reject').click();
        await dialog.waitFor({ state: 'detached' });
      }
    );

    test(
      'schedule sales_report.ipynb every minute with a changed parameter',
      { timeout: 60_000 },
      async () => {
        const dialog = await scheduleFromFileBrowser(page, 'sales_report.ipynb');
        await dialog.locator('input[name="name"]').fill('Sales US');
        await setParameter(dialog, 'region', 'US');
        // Client-side validation before anything is sent.
        await setParameter(dialog, 'days', 'seven');
        await dialog.locator('[data-error-for="parameters.days"]').waitFor();
        await setParameter(dialog, 'days', '14');
        await dialog.locator('[data-error-for="parameters.days"]').waitFor({ state: 'detached' });
        await dialog.locator('label.jp-sched-segment:has-text("Cron")').click();
        await dialog.locator('select[name="cron-preset"]').selectOption('* * * * *');
        assert.equal(await dialog.locator('input[name="cron"]').inputValue(), '* * * * *');
        const preview = dialog.locator('[data-preview]');
        const expected = await lab.api('preview', {
          method: 'POST',
          body: JSON.stringify({
            trigger: {
              kind: 'cron',
              cron: '* * * * *',
              timezone: await dialog.locator('input[name="timezone"]').inputValue()
            }
          })
        });
        // The preview of the default cron may still be shown while this one is on its way
        // (the preset was picked after the editor had asked about the default).
        await page.waitForFunction(
          words =>
            document.querySelector('.jp-sched-dialog .jp-sched-preview-description')
              ?.textContent === words,
          expected.body.description,
          { timeout: 5000, polling: 100 }
        );
        assert.equal(
          await preview.locator('.jp-sched-preview-description').innerText(),
          expected.body.description
        );
        assert.equal(await preview.locator('.jp-sched-preview-next li').count(), 5);
        await dialog.locator('.jp-sched-advanced summary').click();
        await dialog.locator('input[name="tags"]').fill('finance, demo');
        await dialog.locator('[data-section="trigger"]').scrollIntoViewIfNeeded();
        await page.screenshot({ path: screenshotPath(`dialog${suffix}.png`) });
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached' });

        const { body } = await lab.api('jobs');
        const job = body.jobs.find(j => j.name === 'Sales US');
        assert.ok(job, 'the job was created');
        assert.deepEqual(job.parameters, { region: 'US', days: 14 });
        assert.deepEqual(job.trigger.kind, 'cron');
        assert.equal(job.trigger.cron, '* * * * *');
        assert.deepEqual(job.tags, ['finance', 'demo']);
        ids.sales = job.id;
        // The job's view opens, and the panel lists the job; both word its trigger as the
        // server does, as the dialog's preview did.
        assert.equal(job.trigger_description, expected.body.description);
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${job.id}"]`);
        await view.waitFor();
        assert.equal(
          await view.locator('[data-field="trigger"]').innerText(),
          job.trigger_description
        );
        const panel = await openPanel(page);
        const row = panel.locator(`li.jp-sched-job[data-job-id="${job.id}"]`);
        await row.waitFor({ timeout: 5000 });
        assert.equal(
          await row.locator('[data-field="trigger"]').innerText(),
          job.trigger_description
        );
      }
    );

    test(
      'Run now: the run appears, goes running, then succeeded, without a refresh',
      { timeout: 150_000 },
      async t => {
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${ids.sales}"]`);
        const known = await openRunIds(page);
        await view.locator('[data-action="run-now"]').click();
        const runId = await newRunView(page, known);
        ids.salesRun = runId;
        await panelRun(page, runId).waitFor({ timeout: 3000 });
        await waitStatus(page, runId, 'succeeded');
        // The UI shows the end within 2 s of the server knowing it.
        const run = (await lab.api(`runs/${runId}`)).body;
        assert.equal(run.status, 'succeeded');
        const lag = Date.now() - new Date(run.finished_at).getTime();
        await page.waitForFunction(id => window.__seen[id]?.at(-1) === 'succeeded', runId, {
          timeout: 2000
        });
        const seen = await seenStatuses(page, runId);
        const ran = Date.parse(run.finished_at) - Date.parse(run.started_at);
        t.diagnostic(`statuses shown: ${seen.join(' → ')}; the run ran ${ran} ms`);
        assert.ok(
          seen.includes('running'),
          `statuses shown: ${seen.join(' → ')} (the run ran ${ran} ms)`
        );
        assert.equal(seen[seen.length - 1], 'succeeded');
        assert.ok(lag < 2500 + 1000, `the panel showed the end ${lag} ms after it`);
        await runView(page, runId).locator('[data-action="open-output"]:enabled').waitFor();
        await page.screenshot({ path: screenshotPath(`run-detail${suffix}.png`) });
      }
    );

    test(
      'the executed notebook opens read-only and shows the parameter’s effect',
      { timeout: 60_000 },
      async () => {
        await runView(page, ids.salesRun).locator('[data-action="open-output"]').click();
        const notebook = page.locator('.jp-NotebookPanel:visible');
        await notebook.locator('.jp-OutputArea-output').first().waitFor({ timeout: 20_000 });
        const text = await notebook.locator('.jp-Notebook').innerText();
        assert.match(text, /region='US'/);
        assert.match(text, /days=14/);
        // JupyterLab's own tab says where it comes from, and that it is read-only.
        const tab = page.locator(
          `.lm-TabBar-tab[title*="SchedRuns:${ids.salesRun}/sales_report.ipynb"]`
        );
        assert.match(await tab.getAttribute('title'), /Read-only/);
        await page.screenshot({ path: screenshotPath(`run-output${suffix}.png`) });
      }
    );

    test(
      'a failing notebook: the run shows the error and opens at the failing cell',
      { timeout: 150_000 },
      async () => {
        const dialog = await scheduleFromFileBrowser(page, 'data_quality_check.ipynb');
        await setParameter(dialog, 'max_null_ratio', '1.5');
        // "Run now" is the default trigger of a new job.
        assert.ok(await dialog.locator('input[name="trigger-kind"][value="now"]').isChecked());
        const known = await openRunIds(page);
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached' });
        const runId = await newRunView(page, known);
        await waitStatus(page, runId, 'failed');
        const view = runView(page, runId);
        const error = view.locator('[data-section="error"]');
        await error.waitFor({ timeout: 5000 });
        assert.equal(await error.locator('[data-field="ename"]').innerText(), 'ValueError');
        assert.match(
          await error.locator('[data-field="evalue"]').innerText(),
          /max_null_ratio must be between 0 and 1, got 1\.5/
        );
        await page.screenshot({ path: screenshotPath(`run-failed${suffix}.png`) });
        // The panel's polling saw the run fail: a notification, whose button opens the run.
        const toast = page.locator('.jp-Notification-Toast-error', { hasText: /failed/ });
        await toast.waitFor({ timeout: 10_000 });
        assert.match(await toast.innerText(), /ValueError/);
        await toast.locator('button:has-text("Open run")').click();
        await runView(page, runId).waitFor();
        await toast.waitFor({ state: 'detached', timeout: 5000 });
        await error.locator('[data-action="open-failing-cell"]').click();
        const active = page.locator('.jp-NotebookPanel:visible .jp-Cell.jp-mod-active');
        await active.locator('.jp-OutputArea-output').first().waitFor({ timeout: 20_000 });
        assert.match(await active.innerText(), /ValueError/);
        assert.match(await active.innerText(), /max_null_ratio/);
        await page.screenshot({ path: screenshotPath(`run-failing-cell${suffix}.png`) });
      }
    );

    test('a slow run shows its progress and can be cancelled', { timeout: 150_000 }, async () => {
      const dialog = await scheduleFromFileBrowser(page, 'slow_etl.ipynb');
      await setParameter(dialog, 'steps', '60');
      const known = await openRunIds(page);
      await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
      await dialog.waitFor({ state: 'detached' });
      const runId = await newRunView(page, known);
      ids.slowRun = runId;
      await waitStatus(page, runId, 'running');
      const view = runView(page, runId);
      // Past the set-up cells, in the sleeping ones: the progress shows the cell.
      await page.waitForFunction(
        id => {
          const text = document.querySelector(
            `.jp-sched-detail-body[data-run-id="${id}"] [data-field="progress"]`
          )?.textContent;
          const m = /cell (\d+) of (\d+)/.exec(text ?? '');
          return m && Number(m[1]) >= 5;
        },
        runId,
        { timeout: 60_000, polling: 200 }
      );
      // Whether the log tail showed the run's own output while it ran (checked below).
      ids.logFollowed = await page
        .waitForFunction(
          id =>
            /step \d+\/60/.test(
              document.querySelector(`.jp-sched-detail-body[data-run-id="${id}"] [data-log]`)
                ?.textContent ?? ''
            ),
          runId,
          { timeout: 8000, polling: 200 }
        )
        .then(
          () => true,
          () => false
        );
      await page.screenshot({ path: screenshotPath(`run-running${suffix}.png`) });
      const started = Date.now();
      await view.locator('[data-action="cancel"]').click();
      await waitStatus(page, runId, 'cancelled', 30_000);
      assert.ok(Date.now() - started < 15_000, 'cancelled within 15 s');
      assert.equal((await lab.api(`runs/${runId}`)).body.status, 'cancelled');
      await view.locator('[data-action="cancel"]').waitFor({ state: 'detached', timeout: 5000 });
    });

    test('the log follows a running run', { timeout: 30_000 }, () => {
      assert.equal(
        ids.logFollowed,
        true,
        'the log view showed "step i/60" lines while the run ran'
      );
    });

    test('pause and resume a job', { timeout: 60_000 }, async () => {
      const panel = await openPanel(page);
      await panel.locator(`li.jp-sched-job[data-job-id="${ids.sales}"]`).click();
      const view = page.locator(`.jp-sched-job-detail [data-job-id="${ids.sales}"]`);
      await view.waitFor();
      await view.locator('[data-action="pause"]').click();
      await view.locator('[data-job-status="paused"]').waitFor({ timeout: 5000 });
      await panel
        .locator(`li.jp-sched-job[data-job-id="${ids.sales}"] .jp-sched-pill`)
        .waitFor({ timeout: 5000 });
      assert.equal((await lab.api(`jobs/${ids.sales}`)).body.status, 'paused');
      await view.locator('[data-action="resume"]').click();
      await view.locator('[data-job-status="active"]').waitFor({ timeout: 5000 });
      await view.locator('[data-field="next-fire"]').waitFor({ timeout: 5000 });
      const job = (await lab.api(`jobs/${ids.sales}`)).body;
      assert.equal(job.status, 'active');
      assert.ok(job.next_fire_at);
      await view.locator('[data-section="stats"] svg.jp-sched-chart').waitFor();
      await page.screenshot({ path: screenshotPath(`job-detail${suffix}.png`) });
    });

    test(
      'edit a job: the dialog opens with its settings and saves a change',
      { timeout: 60_000 },
      async () => {
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${ids.sales}"]`);
        await view.locator('[data-action="edit"]').click();
        const dialog = page.locator('.jp-sched-dialog');
        await dialog.locator('[data-param="region"]').waitFor();
        assert.equal(await dialog.locator('[data-param="region"]').inputValue(), 'US');
        assert.equal(await dialog.locator('[data-param="days"]').inputValue(), '14');
        assert.equal(await dialog.locator('input[name="cron"]').inputValue(), '* * * * *');
        await dialog.locator('input[name="name"]').fill('Sales US (edited)');
        await setParameter(dialog, 'days', '21');
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached' });
        await view.locator('h1:has-text("Sales US (edited)")').waitFor({ timeout: 5000 });
        const job = (await lab.api(`jobs/${ids.sales}`)).body;
        assert.equal(job.name, 'Sales US (edited)');
        assert.deepEqual(job.parameters, { region: 'US', days: 21 });
      }
    );

    test('the panel lists jobs and runs, and filters them', { timeout: 30_000 }, async () => {
      const panel = await openPanel(page);
      await panel.locator('select[data-filter="run-status"]').selectOption('failed');
      await page.waitForFunction(
        () => {
          const rows = [...document.querySelectorAll('#jupyter-sched-panel li.jp-sched-run')];
          return rows.length > 0 && rows.every(r => r.dataset.status === 'failed');
        },
        null,
        { timeout: 5000 }
      );
      await panel.locator('select[data-filter="run-status"]').selectOption('');
      await panel.locator('select[data-filter="tag"]').selectOption('finance');
      await page.waitForFunction(
        () => document.querySelectorAll('#jupyter-sched-panel li.jp-sched-job').length === 1,
        null,
        { timeout: 5000 }
      );
      await panel.locator('select[data-filter="tag"]').selectOption('');
      await page.waitForFunction(
        () => document.querySelectorAll('#jupyter-sched-panel li.jp-sched-job').length === 3,
        null,
        { timeout: 5000 }
      );
      await page.screenshot({ path: screenshotPath(`panel${suffix}.png`) });
    });

    test(
      'a job after another: its run follows, shown as a dependency, without a refresh',
      { timeout: 150_000 },
      async () => {
        let dialog = await scheduleFromFileBrowser(page, 'hello.ipynb');
        await dialog.locator('input[name="name"]').fill('Chain A');
        await dialog.locator('label.jp-sched-segment:has-text("Only by hand")').click();
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached' });
        const a = (await lab.api('jobs')).body.jobs.find(j => j.name === 'Chain A');
        assert.ok(a, 'job A was created');
        assert.equal(a.trigger.kind, 'manual');
        const panel = await openPanel(page);
        await panel.locator(`li.jp-sched-job[data-job-id="${a.id}"]`).waitFor({ timeout: 5000 });

        dialog = await scheduleFromFileBrowser(page, 'hello.ipynb');
        await dialog.locator('input[name="name"]').fill('Chain B');
        await dialog.locator('label.jp-sched-segment:has-text("After a job")').click();
        await dialog.locator(`input[name="after-job"][value="${a.id}"]`).check();
        await dialog.locator('select[name="condition"]').selectOption('success');
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached' });
        const b = (await lab.api('jobs')).body.jobs.find(j => j.name === 'Chain B');
        assert.ok(b, 'job B was created');
        assert.equal(b.trigger.kind, 'after');
        assert.deepEqual(b.trigger.jobs, [a.id]);
        assert.equal(b.trigger.condition, 'success');

        await openPanel(page);
        await panel.locator(`li.jp-sched-job[data-job-id="${a.id}"]`).click();
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${a.id}"]`);
        await view.waitFor();
        const known = await openRunIds(page);
        await view.locator('[data-action="run-now"]').click();
        const runA = await newRunView(page, known);
        await openPanel(page);
        await waitStatus(page, runA, 'succeeded');
        // B's run appears in the recent runs by itself, as a dependency, and succeeds.
        const handle = await page.waitForFunction(
          () =>
            document.querySelector('#jupyter-sched-panel li.jp-sched-run[data-job-name="Chain B"]')
              ?.dataset.runId,
          null,
          { timeout: 60_000, polling: 100 }
        );
        const runB = await handle.jsonValue();
        assert.match(await panelRun(page, runB).innerText(), /after another job/);
        await waitStatus(page, runB, 'succeeded');
        const run = (await lab.api(`runs/${runB}`)).body;
        assert.equal(run.trigger, 'dependency');
        assert.ok(run.caused_by.includes(runA), `caused by ${run.caused_by}`);
        await page.screenshot({ path: screenshotPath(`panel-chain${suffix}.png`) });
        ids.chainA = a.id;
        ids.chainRunA = runA;
        ids.chainRunB = runB;
      }
    );

    test('a dependency run links to the run that caused it', { timeout: 30_000 }, async () => {
      const panel = await openPanel(page);
      await panelRun(page, ids.chainRunB).click();
      const view = runView(page, ids.chainRunB);
      const link = view.locator(`[data-section="caused-by"] a[data-caused-by="${ids.chainRunA}"]`);
      await link.waitFor({ timeout: 5000 });
      assert.match(await link.innerText(), /Chain A/);
      await link.click();
      await runView(page, ids.chainRunA).waitFor({ timeout: 5000 });
      assert.ok(await panel.isVisible());
    });

    test(
      'a webhook URL: created with its token shown once, then turned off',
      { timeout: 60_000 },
      async () => {
        const panel = await openPanel(page);
        await panel.locator(`li.jp-sched-job[data-job-id="${ids.chainA}"]`).click();
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${ids.chainA}"]`);
        const section = view.locator('[data-section="webhook"]');
        await section.locator('[data-action="create-webhook"]').click();
        const secret = section.locator('[data-field="webhook-secret"]');
        await secret.waitFor({ timeout: 5000 });
        const token = await secret.inputValue();
        const url = await section.locator('[data-field="webhook-url"]').inputValue();
        assert.match(url, new RegExp(`/sched/api/webhooks/${ids.chainA}$`));
        assert.ok(token.length >= 16, 'a token is shown');
        assert.equal((await lab.api(`jobs/${ids.chainA}`)).body.webhook, true);
        await section.locator('[data-action="copy-webhook-url"]').click();
        await section.locator('[role="status"]').first().waitFor({ timeout: 5000 });
        await section.locator('[data-action="rotate-webhook"]').waitFor();
        await page.screenshot({ path: screenshotPath(`job-webhook${suffix}.png`) });
        // The URL and token run the job without a Jupyter session.
        const called = await fetch(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '{}'
        });
        assert.equal(called.status, 201);
        await section.locator('[data-action="delete-webhook"]').click();
        await section.locator('[data-action="create-webhook"]').waitFor({ timeout: 5000 });
        assert.equal(await secret.count(), 0, 'the token is not shown any more');
        assert.equal((await lab.api(`jobs/${ids.chainA}`)).body.webhook, false);
      }
    );

    test(
      'deleting a job others run after names them, and "Delete anyway" deletes it',
      { timeout: 30_000 },
      async () => {
        const panel = await openPanel(page);
        await panel.locator(`li.jp-sched-job[data-job-id="${ids.chainA}"]`).click();
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${ids.chainA}"]`);
        await view.locator('[data-action="delete"]').click();
        await page
          .locator('.jp-Dialog')
          .getByRole('button', { name: 'Delete', exact: true })
          .click();
        // The server refuses (Chain B runs after Chain A); the dialog says so.
        const dependents = page.locator('.jp-Dialog [data-dialog="delete-dependents"]');
        await dependents.waitFor({ timeout: 5000 });
        assert.match(await dependents.innerText(), /Chain B/);
        await page.locator('.jp-Dialog').getByRole('button', { name: 'Delete anyway' }).click();
        await view.waitFor({ state: 'detached', timeout: 5000 });
        const jobs = (await lab.api('jobs')).body.jobs;
        assert.equal(
          jobs.find(j => j.id === ids.chainA),
          undefined,
          'Chain A is deleted'
        );
        // Left with no job to wait for, Chain B now runs by hand.
        assert.equal(jobs.find(j => j.name === 'Chain B').trigger.kind, 'manual');
        await panel
          .locator(`li.jp-sched-job[data-job-id="${ids.chainA}"]`)
          .waitFor({ state: 'detached', timeout: 5000 });
      }
    );

    test(
      'notification targets and retention in the dialog, with the server’s field errors',
      { timeout: 60_000 },
      async () => {
        const dialog = await scheduleFromFileBrowser(page, 'hello.ipynb');
        await dialog.locator('input[name="name"]').fill('Notified');
        await dialog.locator('label.jp-sched-segment:has-text("Only by hand")').click();
        await dialog.locator('.jp-sched-advanced summary').click();
        // More days than the server keeps: its message shows next to the field.
        await dialog.locator('input[name="retention_days"]').fill('99999');
        await dialog.locator('input[name="retention_runs"]').fill('5');
        await dialog.locator('[data-action="add-webhook-target"]').click();
        await dialog.locator('input[name="notifications.0.url"]').fill('ftp://nowhere');
        await dialog.locator('select[name="notifications.0.format"]').selectOption('slack');
        await dialog.locator('[data-action="add-email-target"]').click();
        await dialog.locator('input[name="notifications.1.to"]').fill('ops@example.org');
        await dialog.locator('input[name="notifications.1.on"][value="success"]').check();
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        // Checked here first: the URL.
        await dialog.locator('[data-error-for="notifications.0.url"]').waitFor({ timeout: 5000 });
        await dialog
          .locator('input[name="notifications.0.url"]')
          .fill('https://hooks.example.org/x');
        await dialog
          .locator('[data-error-for="notifications.0.url"]')
          .waitFor({ state: 'detached' });
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        const error = dialog.locator('[data-error-for="retention_days"]');
        await error.waitFor({ timeout: 5000 });
        assert.ok((await error.innerText()).length > 0);
        await page.screenshot({ path: screenshotPath(`dialog-notifications${suffix}.png`) });
        await dialog.locator('input[name="retention_days"]').fill('30');
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached' });
        const job = (await lab.api('jobs')).body.jobs.find(j => j.name === 'Notified');
        assert.ok(job, 'the job was created');
        assert.equal(job.retention_days, 30);
        assert.equal(job.retention_runs, 5);
        assert.deepEqual(
          job.notifications.map(({ kind, url, format, to, on }) => ({ kind, url, format, to, on })),
          [
            {
              kind: 'webhook',
              url: 'https://hooks.example.org/x',
              format: 'slack',
              to: undefined,
              on: ['failure']
            },
            {
              kind: 'email',
              url: undefined,
              format: undefined,
              to: ['ops@example.org'],
              on: ['failure', 'success']
            }
          ]
        );
      }
    );

    test('no console errors during the story', () => {
      // The only HTTP errors are the server refusing the invalid cron (preview and create)
      // and the delete of a job others run after; Chromium logs those answers as "Failed to
      // load resource", which is no page error.
      const expected =
        /^(4\d\d POST .*\/sched\/api\/(preview|jobs)|409 DELETE .*\/sched\/api\/jobs\/\w+)(\?\d+)?$/;
      assert.deepEqual(
        httpErrors.filter(e => !expected.test(e)),
        []
      );
      const refused =
        /^console: Failed to load resource: the server responded with a status of 4\d\d .*\/sched\/api\/(preview|jobs|jobs\/\w+)(\?\d+)?\)$/;
      assert.deepEqual(
        errors.filter(e => !refused.test(e)),
        []
      );
    });

    test(
      'a lost server shows a "retrying…" banner, not a blank panel',
      { timeout: 60_000 },
      async () => {
        const panel = await openPanel(page);
        await lab.stop();
        await panel.locator('[data-banner="offline"]').waitFor({ timeout: 20_000 });
        assert.match(await panel.locator('[data-banner="offline"]').innerText(), /retrying/);
        assert.ok((await panel.locator('li.jp-sched-job').count()) > 0, 'the jobs stay listed');
        // The job view left open says so too, keeping what it showed.
        const view = page.locator('.jp-sched-job-detail:visible');
        await view.locator('[data-banner="offline"]').waitFor({ timeout: 20_000 });
        assert.ok((await view.locator('[data-job-id]').count()) > 0, 'the job stays shown');
      }
    );
  });
}

// SCHED_THEMES=light runs one theme only (while developing).
for (const theme of (process.env.SCHED_THEMES ?? 'light,dark').split(',')) {
  story(theme);
}
