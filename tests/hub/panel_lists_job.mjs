// Logs a person in to the test hub in headless Chromium, opens their JupyterLab and the
// scheduler's panel, and waits until the panel lists a job with the given name.
//
//   HUB_URL=... HUB_USER=... HUB_PASSWORD=... JOB_NAME=... node tests/hub/panel_lists_job.mjs
//
// (The password comes in the environment, not the command line, which every user can read.)
// Prints "listed" and exits 0, or prints what went wrong and exits 1.
import { launchBrowser } from '../../ui-tests/lab.mjs';
import { openSchedPanel } from './hublab.mjs';

const { HUB_URL, HUB_USER, HUB_PASSWORD, JOB_NAME } = process.env;
const { browser, close } = await launchBrowser();
try {
  const { panel } = await openSchedPanel(browser, {
    url: HUB_URL,
    user: HUB_USER,
    password: HUB_PASSWORD
  });
  await panel.getByText(JOB_NAME).first().waitFor({ timeout: 120_000 });
  console.log('listed');
} catch (err) {
  console.log(`not listed: ${err.message}`);
  process.exitCode = 1;
} finally {
  await close();
}
