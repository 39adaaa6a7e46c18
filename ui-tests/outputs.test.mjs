// What runs produced, in the JupyterLab panel (issue 12), in the light and the dark theme,
// against a real `jupyter lab` with the embedded scheduler: two runs of the example sales
// report with different parameters (and a PDF output) show their chart's thumbnail in the
// runs list and on the job's card; "Compare with previous" opens the diff with the changed
// table and chart side by side; "Open PDF" opens the run's PDF; the job dialog keeps the
// PDF output and sets an email target's report options. Screenshots go to
// ui-tests/screenshots/ (`make screenshots` publishes them to docs/screenshots/); any
// console error fails the test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, openLab, screenshotPath, startLab } from './lab.mjs';

const sleep = ms => new Promise(ok => setTimeout(ok, ms));

async function openPanel(page) {
  const panel = page.locator('#jupyter-sched-panel');
  if (!(await panel.isVisible())) {
    await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
  }
  await panel.waitFor();
  return panel;
}

/** Run the job now with `parameters` and wait (generously: a PDF is printed after the
 * notebook ran, a browser start on a loaded machine) until it succeeded; the run. */
async function runToSuccess(lab, jobId, parameters) {
  const started = await lab.api(`jobs/${jobId}/run`, {
    method: 'POST',
    body: JSON.stringify({ parameters })
  });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const deadline = Date.now() + 300_000;
  for (;;) {
    const run = (await lab.api(`runs/${started.body.id}`)).body;
    if (['succeeded', 'failed', 'cancelled', 'timed_out', 'lost'].includes(run.status)) {
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      return run;
    }
    assert.ok(Date.now() < deadline, `run ${run.id} still ${run.status}`);
    await sleep(500);
  }
}

/** Wait until the image `locator` names has loaded and has pixels; its natural size. */
async function loadedImage(locator) {
  await locator.waitFor({ timeout: 30_000 });
  await locator.evaluate(img =>
    img.complete && img.naturalWidth
      ? null
      : new Promise((ok, fail) => {
          img.addEventListener('load', ok, { once: true });
          img.addEventListener('error', fail, { once: true });
        })
  );
  return locator.evaluate(img => ({ width: img.naturalWidth, height: img.naturalHeight }));
}

function outputs(theme) {
  const suffix = theme === 'dark' ? '-dark' : '';
  describe(`what runs produced (${theme} theme)`, { timeout: 900_000 }, () => {
    let lab;
    let browser;
    let context;
    let page;
    let errors;
    let httpErrors;
    let job;
    let first;
    let second;

    before(async () => {
      lab = await startLab({ theme });
      const created = await lab.api('jobs', {
        method: 'POST',
        body: JSON.stringify({
          name: 'Sales report',
          notebook: 'sales_report.ipynb',
          trigger: { kind: 'manual' },
          output_formats: ['ipynb', 'pdf']
        })
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      job = created.body;
      first = await runToSuccess(lab, job.id, { region: 'EU', days: 7 });
      second = await runToSuccess(lab, job.id, { region: 'US', days: 10 });
      browser = await launchBrowser();
      ({ context, page, errors, httpErrors } = await openLab(browser.browser, lab));
    });

    after(async () => {
      await browser?.close();
      await lab?.stop();
    });

    test(
      'the runs list and the job card show the chart thumbnails',
      { timeout: 60_000 },
      async () => {
        assert.ok(first.has_thumbnail && second.has_thumbnail);
        const panel = await openPanel(page);
        for (const run of [first, second]) {
          const thumb = panel.locator(
            `li.jp-sched-run[data-run-id="${run.id}"] img.jp-sched-thumbnail`
          );
          const size = await loadedImage(thumb);
          // The chart is 8 x 4 inches: its thumbnail keeps the 2:1 shape.
          assert.ok(size.width > 0 && size.width <= 240, JSON.stringify(size));
          assert.ok(Math.abs(size.width / size.height - 2) < 0.1, JSON.stringify(size));
        }
        // The job's card shows its latest run's thumbnail.
        const card = panel.locator(
          `li.jp-sched-job[data-job-id="${job.id}"] img.jp-sched-thumbnail`
        );
        await loadedImage(card);
        assert.equal(await card.getAttribute('data-thumbnail'), second.id);
        await page.screenshot({ path: screenshotPath(`outputs-thumbnails${suffix}.png`) });
      }
    );

    test(
      '"compare with previous" shows the changed table and chart side by side',
      { timeout: 60_000 },
      async () => {
        const panel = await openPanel(page);
        await panel.locator(`li.jp-sched-run[data-run-id="${second.id}"]`).click();
        const runView = page.locator(`.jp-sched-detail-body[data-run-id="${second.id}"]`);
        await runView.waitFor();
        await runView.locator('[data-action="compare-previous"]').click();
        const diff = page.locator(`[data-compare="${first.id}:${second.id}"]`);
        await diff.waitFor({ timeout: 30_000 });

        const parameters = await diff.locator('[data-section="parameters"]').innerText();
        assert.match(parameters, /days/);
        assert.match(parameters, /region/);
        assert.match(parameters, /EU/);
        assert.match(parameters, /US/);

        // The chart: both sides show their image, and they differ.
        const chart = diff
          .locator('[data-change="modified"]')
          .filter({ has: page.locator('img.jp-sched-output-image') });
        await chart.first().waitFor();
        const images = chart.first().locator('img.jp-sched-output-image');
        assert.equal(await images.count(), 2);
        const sources = await images.evaluateAll(imgs => imgs.map(i => i.src));
        assert.notEqual(sources[0], sources[1]);
        for (const side of ['a', 'b']) {
          await loadedImage(chart.first().locator(`[data-side="${side}"] img`));
        }
        // The daily table: the old side ends on day 7, the new one on day 10.
        const table = diff
          .locator('[data-change="modified"]')
          .filter({ hasText: '2024-01-10' })
          .first();
        assert.match(await table.locator('[data-side="a"]').innerText(), /2024-01-07/);
        assert.doesNotMatch(await table.locator('[data-side="a"]').innerText(), /2024-01-10/);
        assert.match(await table.locator('[data-side="b"]').innerText(), /2024-01-10/);

        await chart.first().scrollIntoViewIfNeeded();
        await page.screenshot({ path: screenshotPath(`outputs-compare${suffix}.png`) });
      }
    );

    test('"Open PDF" opens the run\'s PDF', { timeout: 60_000 }, async () => {
      assert.ok(second.has_pdf);
      const panel = await openPanel(page);
      await panel.locator(`li.jp-sched-run[data-run-id="${second.id}"]`).click();
      const runView = page.locator(`.jp-sched-detail-body[data-run-id="${second.id}"]`);
      await runView.waitFor();
      const button = runView.locator('[data-action="open-pdf"]');
      await button.waitFor();
      await page.screenshot({ path: screenshotPath(`outputs-run-pdf${suffix}.png`) });
      const [tab] = await Promise.all([context.waitForEvent('page'), button.click()]);
      await tab.waitForURL(/^blob:/, { timeout: 30_000 });
      // The tab shows a document of the panel's origin: the PDF, as the server sent it.
      const head = await page.evaluate(async url => {
        const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
        return { start: String.fromCharCode(...bytes.slice(0, 5)), size: bytes.length };
      }, tab.url());
      assert.equal(head.start, '%PDF-');
      assert.ok(head.size > 10_000, `a PDF of ${head.size} bytes`);
      await tab.close();
    });

    test(
      "the job dialog keeps the PDF output and sets an email target's report",
      { timeout: 60_000 },
      async () => {
        const panel = await openPanel(page);
        await panel.locator(`li.jp-sched-job[data-job-id="${job.id}"]`).click();
        const view = page.locator(`.jp-sched-job-detail [data-job-id="${job.id}"]`);
        await view.waitFor();
        await view.locator('[data-action="edit"]').click();
        const dialog = page.locator('.jp-sched-dialog');
        await dialog.waitFor();
        await dialog.locator('.jp-sched-advanced summary').click();
        assert.ok(await dialog.locator('input[name="output_pdf"]').isChecked());
        assert.ok(!(await dialog.locator('input[name="output_html"]').isChecked()));
        await dialog.locator('[data-action="add-email-target"]').click();
        await dialog.locator('input[name="notifications.0.to"]').fill('board@example.org');
        await dialog.locator('input[name="notifications.0.on"][value="success"]').check();
        // The report's options show once the report is on.
        const hide = dialog.locator('input[name="notifications.0.report.hide_input"]');
        assert.equal(await hide.count(), 0);
        await dialog.locator('input[name="notifications.0.report"]').check();
        await hide.check();
        await dialog.locator('input[name="notifications.0.report.attach"][value="ipynb"]').check();
        await dialog.locator('[data-field="notifications.0.report"]').scrollIntoViewIfNeeded();
        await page.screenshot({ path: screenshotPath(`outputs-report-options${suffix}.png`) });
        await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
        await dialog.waitFor({ state: 'detached', timeout: 10_000 });
        const saved = (await lab.api(`jobs/${job.id}`)).body;
        assert.deepEqual(saved.output_formats, ['ipynb', 'pdf']);
        assert.equal(saved.notifications.length, 1);
        const [target] = saved.notifications;
        assert.deepEqual(target.to, ['board@example.org']);
        assert.deepEqual(target.on, ['failure', 'success']);
        assert.equal(target.report.hide_input, true);
        assert.deepEqual(target.report.attach, ['ipynb']);
      }
    );

    test('no console errors', () => {
      assert.deepEqual(httpErrors, []);
      assert.deepEqual(errors, []);
    });
  });
}

// SCHED_THEMES=light runs one theme only (while developing).
for (const theme of (process.env.SCHED_THEMES ?? 'light,dark').split(',')) {
  outputs(theme);
}
