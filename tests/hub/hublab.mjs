// Shared by the hub's browser checks: log a person in to the test hub and open the
// scheduler's panel in their JupyterLab. Returns the page and the panel's locator.
export async function openSchedPanel(browser, { url, user, password }) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${url}/hub/login`);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  await Promise.all([
    page.waitForNavigation(),
    page.click('input[type="submit"], button[type="submit"]')
  ]);
  await page.goto(`${url}/user/${user}/lab`);
  await page.waitForSelector('#jupyterlab-splash', { state: 'detached', timeout: 120_000 });
  const panel = page.locator('#jupyter-sched-panel');
  if (!(await panel.isVisible())) {
    await page.click('.jp-SideBar [data-id="jupyter-sched-panel"]');
  }
  return { page, panel };
}
