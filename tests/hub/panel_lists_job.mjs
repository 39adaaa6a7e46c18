// Logs a person in to the test hub in headless Chromium, opens their JupyterLab and the
// scheduler's panel, and waits until the panel lists a job with the given name.
//
//   HUB_URL=... HUB_USER=... HUB_PASSWORD=... JOB_NAME=... node tests/hub/panel_lists_job.mjs
//
// (The password comes in the environment, not the command line, which every user can read.)
// Prints "listed" and exits 0, or prints what went wrong and exits 1.
import { launchBrowser } from '../../ui-tests/lab.mjs';

const { HUB_URL, HUB_USER, HUB_PASSWORD, JOB_NAME } = process.env;
const { browser, close } = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${HUB_URL}/hub/login`);
  await page.fill('input[name="username"]', HUB_USER);
  await page.fill('input[name="password"]', HUB_PASSWORD);
  await Promise.all([
    page.waitForNavigation(),
    page.click('input[type="submit"], button[type="submit"]')
  ]);
  await page.goto(`${HUB_URL}/user/${HUB_USER}/lab`);
  await page.waitForSelector('#jupyterlab-splash', { state: 'detached', timeout: 120_000 });
  const panel = page.locator('#jupyter-sched-panel');
  if (!(await panel.isVisible())) {
    await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
  }
  await panel.getByText(JOB_NAME).first().waitFor({ timeout: 120_000 });
  console.log('listed');
} catch (err) {
  console.log(`not listed: ${err.message}`);
  process.exitCode = 1;
} finally {
  await close();
}
