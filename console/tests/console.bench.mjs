// Console figures for docs/benchmarks.md, in Debian's Chromium through
// playwright-core. Run by scripts/bench-console.sh against a node it seeded.
//
//   node console.bench.mjs tti       time to interactive per page: from
//                                    navigation to the page's first data
//                                    drawn (`data-ready`), RUNS cold loads
//                                    each, as JSON lines
//   node console.bench.mjs consoles  CONSOLES tabs, each open on one page
//                                    (Live, Spend, Usage, Workflows,
//                                    Marketplace) with its auto-refresh, until
//                                    SIGTERM; prints "open" once all show data
//
// Environment: BASE, CHROMIUM, TOKEN (optional), RUNS (5), CONSOLES (5).

import { chromium } from 'playwright-core';

const { BASE, CHROMIUM, TOKEN = '' } = process.env;
const RUNS = Number(process.env.RUNS ?? 5);
const CONSOLES = Number(process.env.CONSOLES ?? 5);
const PAGES = ['live', 'spend', 'usage', 'workflows', 'marketplace', 'sql'];

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});

async function tab() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  if (TOKEN) await context.addInitScript((t) => sessionStorage.setItem('somaflow.token', t), TOKEN);
  return context.newPage();
}

async function open(page, id) {
  const started = performance.now();
  await page.goto(`${BASE}/#${id}`);
  await page.waitForSelector(`#page[data-page="${id}"][data-ready="true"]`, { timeout: 120_000 });
  return performance.now() - started;
}

if (process.argv[2] === 'tti') {
  for (const id of PAGES) {
    const times = [];
    for (let run = 0; run < RUNS; run += 1) {
      const page = await tab();
      times.push(await open(page, id));
      await page.context().close();
    }
    times.sort((a, b) => a - b);
    console.log(JSON.stringify({
      page: id,
      runs: RUNS,
      median_ms: Math.round(times[Math.floor(times.length / 2)]),
      max_ms: Math.round(times.at(-1)),
    }));
  }
  await browser.close();
} else {
  const tabs = await Promise.all(Array.from({ length: CONSOLES }, tab));
  await Promise.all(tabs.map((page, i) => open(page, PAGES[i % PAGES.length])));
  console.log('open');
  // Each tab stays on its page, refreshing as a person watching it sees.
  process.on('SIGTERM', async () => {
    await browser.close();
    process.exit(0);
  });
}
