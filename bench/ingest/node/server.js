'use strict';
// server.js - the Node comparison server for bench/ingest.
//
// What a careful Node shop would write for the same job as paystream-ingest:
// read the raw body, verify it with the official stripe package's
// stripe.webhooks.constructEvent, XADD it to the Redis stream with ioredis, and
// answer 200 only after Redis acknowledged the entry (400 on a bad signature,
// 503 when Redis fails). One process, one event loop, like paystream-ingest.
//
// Environment: PORT, REDIS_URL (redis://127.0.0.1:PORT/0), STRIPE_WEBHOOK_SECRET,
// STREAM (default bench:node:events), WEBHOOK_PATH (default /webhooks/stripe).
const http = require('node:http');
const Stripe = require('stripe');
const Redis = require('ioredis');

const port = Number(process.env.PORT || 8082);
const secret = process.env.STRIPE_WEBHOOK_SECRET;
const stream = process.env.STREAM || 'bench:node:events';
const path = process.env.WEBHOOK_PATH || '/webhooks/stripe';
const maxBody = 1 << 20;
if (!secret) {
  console.error('server.js: STRIPE_WEBHOOK_SECRET is not set');
  process.exit(2);
}

// No API call is ever made: the key only satisfies the constructor.
const stripe = new Stripe('sk_test_bench_not_used');
const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379/0', {
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
});
redis.on('error', (e) => console.error('redis:', e.message));

function reply(res, status, body) {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.url !== path) return reply(res, 404, '{"error":"not_found"}');
  if (req.method !== 'POST') return reply(res, 405, '{"error":"method_not_allowed"}');
  const chunks = [];
  let size = 0;
  let tooBig = false;
  req.on('data', (c) => {
    size += c.length;
    if (size > maxBody) tooBig = true;
    else chunks.push(c);
  });
  req.on('end', () => {
    if (tooBig) return reply(res, 413, '{"error":"body_too_large"}');
    const body = Buffer.concat(chunks, size);
    let event;
    try {
      event = stripe.webhooks.constructEvent(body, req.headers['stripe-signature'], secret);
    } catch (e) {
      return reply(res, 400, JSON.stringify({ error: 'signature_verification_failed' }));
    }
    if (typeof event.id !== 'string' || typeof event.type !== 'string') {
      return reply(res, 400, '{"error":"not_an_event"}');
    }
    redis
      .xadd(stream, '*', 'id', event.id, 'type', event.type, 'body', body, 'received', String(Date.now()))
      .then(() => reply(res, 200, '{"received":true}'))
      .catch(() => reply(res, 503, '{"error":"redis_unavailable"}'));
  });
});
server.keepAliveTimeout = 10000;
server.headersTimeout = 11000;
server.requestTimeout = 10000;
server.maxConnections = 4096;
server.listen(port, '127.0.0.1', () => console.log(`node bench server on 127.0.0.1:${port}`));

function stop() {
  server.close();
  server.closeAllConnections();
  redis.quit().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
