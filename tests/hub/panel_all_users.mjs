// Logs a person in to the test hub in headless Chromium, opens the scheduler's panel and
// checks its "all users" switch: an admin (EXPECT_SWITCH=yes) has it, and switching it on
// lists the jobs of every person in OWNERS (comma-separated) with their owner shown; anyone
// else (EXPECT_SWITCH=no) has no switch once their own job JOB_NAME is listed.
//
//   HUB_URL=... HUB_USER=... HUB_PASSWORD=... EXPECT_SWITCH=yes OWNERS=alice,bob \
//     node tests/hub/panel_all_users.mjs
//
// Prints what it saw and exits 0, or prints what went wrong and exits 1.
import { launchBrowser } from '../../ui-tests/lab.mjs';
import { openSchedPanel } from './hublab.mjs';

const { HUB_URL, HUB_USER, HUB_PASSWORD, EXPECT_SWITCH, OWNERS = '', JOB_NAME } = process.env;
const { browser, close } = await launchBrowser();
try {
  const { panel } = await openSchedPanel(browser, {
    url: HUB_URL,
    user: HUB_USER,
    password: HUB_PASSWORD
  });
  const allUsers = panel.locator('[data-filter="all-users"]');
  if (EXPECT_SWITCH === 'yes') {
    await allUsers.waitFor({ timeout: 120_000 });
    if ((await panel.locator('[data-field="owner"]').count()) !== 0) {
      throw new Error('owners shown before switching to all users');
    }
    await allUsers.check();
    const owners = panel.locator('[data-list="jobs"] [data-field="owner"]');
    for (const owner of OWNERS.split(',')) {
      await owners.filter({ hasText: owner }).first().waitFor({ timeout: 120_000 });
    }
    const seen = [...new Set(await owners.allTextContents())].sort();
    console.log(`switch; owners: ${seen.join(',')}`);
  } else {
    await panel.getByText(JOB_NAME).first().waitFor({ timeout: 120_000 });
    if ((await allUsers.count()) !== 0) {
      throw new Error('a user who is not an admin has the "all users" switch');
    }
    console.log('no switch');
  }
} catch (err) {
  console.log(`failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  await close();
}
