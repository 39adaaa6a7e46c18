// Report builders in the JupyterLab panel (issue 11, acceptance 4), in the light and the
// dark theme, against a real `jupyter lab` with the embedded scheduler: create a sweep job
// from the dialog with the grid editor (the run count shown as the grid is typed, a value
// the form refuses and a limit the server refuses shown under their fields), run it now,
// watch its batch row progress live in the panel, open its summary table; backfill a
// daily job from its view, chart a recorded value over its runs and see a run's values in
// its view. Screenshots go to ui-tests/screenshots/ (`make screenshots` publishes them to
// docs/screenshots/); any console error fails the test.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { REPO, launchBrowser, openLab, screenshotPath, startLab } from './lab.mjs';

const sleep = ms => new Promise(ok => setTimeout(ok, ms));

/** The first truthy answer of `check`, asked every 200 ms for at most `timeout` ms. */
async function until(check, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const answer = await check();
    if (answer) {
      return answer;
    }
    if (Date.now() > deadline) {
      throw new Error(`not true within ${timeout} ms: ${check}`);
    }
    await sleep(200);
  }
}

/** A root with the demo notebooks and report.ipynb, which records values as it runs. */
function reportRoot() {
  const root = mkdtempSync(join(tmpdir(), 'sched-reports-root-'));
  cpSync(join(REPO, 'notebooks'), root, { recursive: true });
  cpSync(join(REPO, 'tests', 'notebooks', 'report.ipynb'), join(root, 'report.ipynb'));
  return root;
}

async function openPanel(page) {
  const panel = page.locator('#jupyter-sched-panel');
  if (!(await panel.isVisible())) {
    await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
  }
  await panel.waitFor();
  return panel;
}

/** Right-click `file` in the file browser → "Schedule notebook…"; the dialog. */
async function scheduleFromFileBrowser(page, file) {
  const browser = page.locator('#filebrowser');
  if (!(await browser.isVisible())) {
    await page.click('.jp-SideBar [data-id="filebrowser"]');
  }
  await browser.waitFor();
  await page.click(`.jp-DirListing-item[title^="Name: ${file}"]`, { button: 'right' });
  await page.click('.lm-Menu-item:has-text("Schedule notebook…")');
  const dialog = page.locator('.jp-sched-dialog');
  await dialog.waitFor();
  await dialog.locator('[data-param]').first().waitFor();
  return dialog;
}

const runCount = async dialog =>
  Number(await dialog.locator('.jp-sched-sweep-count').getAttribute('data-run-count'));

/** Record, in the page, every progress text each batch row of the panel shows (every 100 ms). */
async function recordProgress(page) {
  await page.evaluate(() => {
    window.__progress = {};
    setInterval(() => {
      for (const row of document.querySelectorAll('#jupyter-sched-panel li.jp-sched-batch')) {
        const seen = (window.__progress[row.dataset.batchId] ??= []);
        const text = row.querySelector('[data-field="batch-progress"]')?.textContent ?? '';
        if (seen[seen.length - 1] !== text) {
          seen.push(text);
        }
      }
    }, 100);
  });
}

function reports(theme) {
  const suffix = theme === 'dark' ? '-dark' : '';
  describe(`report builders in JupyterLab (${theme} theme)`, { timeout: 900_000 }, () => {
    let lab;
    let browser;
    let page;
    let errors;
    let httpErrors;
    let root;
    const ids = {};

    before(async () => {
      root = reportRoot();
      lab = await startLab({ theme, root });
      browser = await launchBrowser();
      ({ page, errors, httpErrors } = await openLab(browser.browser, lab));
      await recordProgress(page);
    });

    after(async () => {
      await browser?.close();
      await lab?.stop();
      rmSync(root, { recursive: true, force: true });
    });

    test(
      'a sweep job from the dialog: the grid counts its runs as it is typed',
      { timeout: 120_000 },
      async () => {
        const dialog = await scheduleFromFileBrowser(page, 'report.ipynb');
        await dialog.locator('input[name="name"]').fill('Regions by period');
        const sweep = dialog.locator('[data-section="sweep"]');
        assert.equal(await runCount(dialog), 1);
        await sweep.locator('[data-action="add-sweep-row"]').click();
        await sweep.locator('select[name="sweep-name-0"]').selectOption('region');
        await sweep.locator('input[name="sweep-values-0"]').fill('EU, US');
        assert.equal(await runCount(dialog), 2);
        await sweep.locator('[data-action="add-sweep-row"]').click();
        await sweep.locator('select[name="sweep-name-1"]').selectOption('days');
        await sweep.locator('input[name="sweep-values-1"]').fill('1, 7, x');
        assert.equal(await runCount(dialog), 6);
        assert.match(await sweep.locator('.jp-sched-sweep-count').innerText(), /6 runs per fire/);

        // A value that is no whole number: refused under its row before anything is sent.
        await dialog.locator('label.jp-sched-segment:has-text("Run now")').click();
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        const rowError = dialog.locator('[data-error-for="sweep.days"]');
        await rowError.waitFor({ timeout: 5000 });
        assert.match(await rowError.innerText(), /x/);
        await sweep.locator('input[name="sweep-values-1"]').fill('1, 7');
        assert.equal(await runCount(dialog), 4);

        // A limit above the server's: its 422 shows under the field, nothing is created.
        await sweep.locator('input[name="max_parallel"]').fill('5000');
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        const limitError = dialog.locator('[data-error-for="max_parallel"]');
        await limitError.waitFor({ timeout: 10_000 });
        assert.match(await limitError.innerText(), /1000/);
        assert.equal((await lab.api('jobs')).body.jobs.length, 0);

        await sweep.locator('input[name="max_parallel"]').fill('2');
        await sweep.scrollIntoViewIfNeeded();
        await page.screenshot({ path: screenshotPath(`dialog-sweep${suffix}.png`) });
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached', timeout: 30_000 });

        const { body } = await lab.api('jobs');
        const job = body.jobs.find(j => j.name === 'Regions by period');
        assert.ok(job, 'the job was created');
        assert.deepEqual(job.sweep, { region: ['EU', 'US'], days: [1, 7] });
        assert.equal(job.max_parallel, 2);
        ids.sweep = job.id;
      }
    );

    test(
      'run now: the batch row shows its progress live and opens the summary table',
      { timeout: 400_000 },
      async () => {
        const { body } = await lab.api(`batches?job_id=${ids.sweep}`);
        assert.equal(body.batches.length, 1, 'Run now made one batch');
        const batch = body.batches[0];
        assert.equal(batch.total, 4);
        ids.batch = batch.id;
        // The sweep opened its summary in the main area, following it.
        const view = page.locator(`.jp-sched-batch-detail [data-batch-id="${batch.id}"]`);
        await view.waitFor({ timeout: 10_000 });

        const panel = await openPanel(page);
        const row = panel.locator(`li.jp-sched-batch[data-batch-id="${batch.id}"]`);
        await row.waitFor({ timeout: 10_000 });
        await page.screenshot({ path: screenshotPath(`panel-batch${suffix}.png`) });
        await page.waitForFunction(
          id =>
            document.querySelector(`#jupyter-sched-panel li.jp-sched-batch[data-batch-id="${id}"]`)
              ?.dataset.status === 'succeeded',
          batch.id,
          { timeout: 360_000, polling: 200 }
        );
        // the recorder (every 100 ms) sees the row's last text too
        await page.waitForFunction(
          id => (window.__progress[id] ?? []).at(-1) === '4/4 done',
          batch.id,
          { timeout: 5000, polling: 100 }
        );
        const seen = await page.evaluate(id => window.__progress[id] ?? [], batch.id);
        // Live: the row showed the batch unfinished, then finished, without a reload.
        assert.ok(
          seen.some(text => /^[0-3]\/4 done/.test(text)),
          `progress seen: ${JSON.stringify(seen)}`
        );

        await row.click();
        await view.waitFor();
        const rows = view.locator('tr[data-run-id]');
        await page.waitForFunction(
          id =>
            [
              ...document.querySelectorAll(
                `.jp-sched-batch-detail [data-batch-id="${id}"] tr[data-run-id]`
              )
            ].filter(tr => tr.dataset.status === 'succeeded').length === 4,
          batch.id,
          { timeout: 30_000, polling: 200 }
        );
        assert.equal(await rows.count(), 4);
        assert.equal(
          await view.locator('th[data-value="rows"]').count(),
          1,
          'the recorded values are columns'
        );
        const summary = (await lab.api(`jobs/${ids.sweep}/summary?batch=${batch.id}`)).body;
        assert.deepEqual(
          summary.rows.map(r => [r.parameters.region, r.parameters.days, r.values.rows]),
          [
            ['EU', 1, 10],
            ['EU', 7, 70],
            ['US', 1, 10],
            ['US', 7, 70]
          ]
        );
        await page.screenshot({ path: screenshotPath(`batch-summary${suffix}.png`) });
      }
    );

    test(
      'backfill a daily job from its view, chart a recorded value over its runs, open a run',
      { timeout: 400_000 },
      async () => {
        const created = await lab.api('jobs', {
          method: 'POST',
          body: JSON.stringify({
            name: 'Daily report',
            notebook: 'report.ipynb',
            trigger: { kind: 'cron', cron: '0 6 * * *', timezone: 'UTC' }
          })
        });
        assert.equal(created.status, 201);
        const job = created.body;
        const panel = await openPanel(page);
        const jobRow = panel.locator(`li.jp-sched-job[data-job-id="${job.id}"]`);
        await jobRow.waitFor({ timeout: 10_000 });
        await jobRow.click();
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${job.id}"]`);
        await view.waitFor();
        await view.locator('[data-action="backfill"]').click();
        const form = page.locator('.jp-sched-backfill-form');
        await form.waitFor();
        const day = 24 * 3600 * 1000;
        const date = back => new Date(Date.now() - back * day).toISOString().slice(0, 10);
        await form.locator('input[name="start"]').fill(`${date(3)}T00:00`);
        await form.locator('input[name="end"]').fill(`${date(1)}T23:59`);
        await form.locator('input[name="max_parallel"]').fill('1');
        const preview = form.locator('[data-field="backfill-preview"]');
        await page.waitForFunction(
          () =>
            /^3 fires \(3 runs\)/.test(
              document.querySelector('.jp-sched-backfill-form [data-field="backfill-preview"]')
                ?.textContent ?? ''
            ),
          null,
          { timeout: 10_000, polling: 100 }
        );
        assert.match(await preview.innerText(), /^3 fires \(3 runs\)/);
        await page.screenshot({ path: screenshotPath(`backfill${suffix}.png`) });
        await page.locator('.jp-Dialog-button.jp-mod-accept').click();

        // The dialog closes, then the panel asks for the backfill.
        const batches = await until(async () => {
          const { body } = await lab.api(`batches?job_id=${job.id}`);
          return body.batches.length ? body.batches : null;
        });
        assert.equal(batches.length, 1);
        const batch = batches[0];
        assert.deepEqual([batch.kind, batch.total, batch.max_parallel], ['backfill', 3, 1]);
        const batchView = page.locator(`.jp-sched-batch-detail [data-batch-id="${batch.id}"]`);
        await batchView.waitFor({ timeout: 10_000 });
        await page.waitForFunction(
          id =>
            [
              ...document.querySelectorAll(
                `.jp-sched-batch-detail [data-batch-id="${id}"] tr[data-run-id]`
              )
            ].filter(tr => tr.dataset.status === 'succeeded').length === 3,
          batch.id,
          { timeout: 360_000, polling: 250 }
        );
        // One run per day of the range, each for its own date (06:00 UTC as the cron says).
        const summary = (await lab.api(`jobs/${job.id}/summary?batch=${batch.id}`)).body;
        assert.deepEqual(
          summary.rows.map(r => r.values.reported_for.slice(0, 16)),
          [3, 2, 1].map(back => `${date(back)}T06:00`)
        );

        // The job's view charts a recorded value over its runs.
        await jobRow.click();
        const chart = view.locator('[data-section="values"] svg.jp-sched-value-chart');
        await page.waitForFunction(
          id =>
            document.querySelector(
              `.jp-sched-job-detail [data-job-id="${id}"] svg.jp-sched-value-chart`
            )?.dataset.points === '3',
          job.id,
          { timeout: 30_000, polling: 200 }
        );
        assert.equal(await chart.getAttribute('data-value'), 'rows');
        assert.equal(await chart.locator('circle').count(), 3);
        await chart.scrollIntoViewIfNeeded();
        await page.screenshot({ path: screenshotPath(`job-values${suffix}.png`) });

        // A run's view lists the values it recorded.
        const runRow = view.locator('tr[data-run-id]').first();
        const runId = await runRow.getAttribute('data-run-id');
        await runRow.locator('td').nth(1).click();
        const values = page.locator(
          `.jp-sched-run-detail [data-run-id="${runId}"] [data-section="run-values"]`
        );
        await values.waitFor({ timeout: 10_000 });
        const recorded = (await lab.api(`runs/${runId}`)).body.values;
        assert.equal(recorded.rows, 70);
        assert.equal(await values.locator('tr[data-value="rows"] td').innerText(), '70');
        assert.equal(
          await values.locator('tr[data-value="reported_for"] td').innerText(),
          JSON.stringify(recorded.reported_for)
        );
      }
    );

    test('no console errors along the way', () => {
      // The one HTTP error is the server refusing the limit above its own (422 on create);
      // Chromium logs that answer as "Failed to load resource", which is no page error.
      assert.deepEqual(
        httpErrors.map(e => e.replace(/\?\d+$/, '').replace(lab.url, '/')),
        ['422 POST /sched/api/jobs']
      );
      const refused =
        /^console: Failed to load resource: the server responded with a status of 422 .*\/sched\/api\/jobs(\?\d+)?\)$/;
      assert.deepEqual(
        errors.filter(e => !refused.test(e)),
        []
      );
    });
  });
}

reports('light');
reports('dark');
