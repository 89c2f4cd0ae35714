// post_events.js - sign each event of a JSON-lines file with the official
// stripe package (stripe.webhooks.generateTestHeaderString, exactly the header
// Stripe sends) and POST it to paystream-ingest, in the file's order, as
// Stripe would: a 5xx or a lost connection is retried, anything but 200 after
// that fails the run.
//   node post_events.js URL SECRET FILE      (lines: {"id", "type", "body", ...})
// Optional, for the failover tests: PS_POST_LOG=FILE appends one line per
// attempt ("unix_ms status duration_ms event_id"); PS_POST_ATTEMPTS (31) and
// PS_POST_RETRY_MAX_MS (2000) bound the retries; PS_POST_ONCE=1 posts each
// event once and never fails the run (the log says what each got).
'use strict';
const fs = require('fs');
const http = require('http');
const Stripe = require('stripe');

const [url, secret, file] = process.argv.slice(2);
if (!url || !secret || !file) {
  console.error('usage: node post_events.js URL SECRET FILE');
  process.exit(2);
}
const stripe = new Stripe('sk_test_paystream_unused');
const logFile = process.env.PS_POST_LOG;
const attempts = Number(process.env.PS_POST_ATTEMPTS || 31);
const retryMax = Number(process.env.PS_POST_RETRY_MAX_MS || 2000);
const once = process.env.PS_POST_ONCE === '1';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(body) {
  const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret });
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'Stripe-Signature': header,
                 'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (e) => resolve({ status: 0, text: String(e) }));
    req.end(body);
  });
}

async function main() {
  const events = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim())
    .map((l) => JSON.parse(l));
  for (const ev of events) {
    for (let attempt = 0; ; attempt++) {
      const t0 = Date.now();
      const r = await post(ev.body);
      if (logFile) fs.appendFileSync(logFile, `${t0} ${r.status} ${Date.now() - t0} ${ev.id}\n`);
      if (r.status === 200 || once) break;
      if (![0, 502, 503, 504].includes(r.status) || attempt >= attempts - 1) {
        console.error(`post_events: POST ${ev.id} (${ev.type}) -> ${r.status} ${r.text.trim()}`);
        process.exit(1);
      }
      await new Promise((ok) => setTimeout(ok, Math.min(retryMax, 100 * 2 ** attempt)));
    }
  }
  agent.destroy();
}
main();
