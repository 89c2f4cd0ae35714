// roles_client.js - the SQL API as a real app and its users call it, with the
// pg package: the app's server (a login in paystream_app) spends credits of two
// users while each user, through a login in paystream_user with their JWT's
// claims set as PostgREST sets them (request.jwt.claims, per transaction),
// reads their own balance, history and subscription, all at once. Every answer
// a user gets must be their own: history rows carry the user in their
// description, balances end equal to the app's view.
//   APP_URL=... USER_URL=... USER_A=uuid USER_B=uuid ROUNDS=n node roles_client.js
'use strict';
const { Client } = require('pg');
const crypto = require('crypto');

const env = process.env;
const users = [env.USER_A, env.USER_B];
const rounds = Number(env.ROUNDS || 200);
const problems = [];

async function connect(url) {
  const c = new Client({ connectionString: url });
  await c.connect();
  return c;
}

async function app(c) {
  let spent = 0;
  for (let i = 0; i < rounds; i++) {
    const u = users[i % 2];
    const r = await c.query('SELECT paystream.deduct_credits($1, $2, 1, $3) AS ok',
      [u, crypto.randomUUID(), `render for ${u}`]);
    if (r.rows[0].ok) spent++;
    await c.query('SELECT * FROM paystream.get_credit_balance($1)', [u]);
  }
  return spent;
}

async function browser(c, me) {
  for (let i = 0; i < rounds; i++) {
    await c.query('BEGIN');
    await c.query("SELECT set_config('request.jwt.claims', $1, true)",
      [JSON.stringify({ sub: me, role: 'authenticated' })]);
    const h = await c.query('SELECT description FROM paystream.my_credit_history(1000)');
    for (const row of h.rows)
      if (!row.description.endsWith(me)) problems.push(`${me} saw a row of another user: ${row.description}`);
    await c.query('SELECT * FROM paystream.my_credit_balance()');
    await c.query('SELECT * FROM paystream.my_subscription()');
    await c.query('SELECT paystream.my_check_credits(1)');
    await c.query('COMMIT');
  }
}

async function main() {
  const appConn = await connect(env.APP_URL);
  const userConns = await Promise.all(users.map(() => connect(env.USER_URL)));
  const [spent] = await Promise.all([app(appConn), ...users.map((u, i) => browser(userConns[i], u))]);
  for (let i = 0; i < 2; i++) {
    const u = users[i];
    await userConns[i].query('BEGIN');
    await userConns[i].query("SELECT set_config('request.jwt.claims', $1, true)", [JSON.stringify({ sub: u })]);
    const mine = (await userConns[i].query('SELECT total FROM paystream.my_credit_balance()')).rows[0].total;
    await userConns[i].query('COMMIT');
    const apps = (await appConn.query('SELECT total FROM paystream.get_credit_balance($1)', [u])).rows[0].total;
    if (mine !== apps) problems.push(`${u}: my_credit_balance ${mine}, the app's ${apps}`);
  }
  await Promise.all([appConn.end(), ...userConns.map((c) => c.end())]);
  console.log(JSON.stringify({ spent, problems }));
  process.exit(problems.length ? 1 : 0);
}
main().catch((e) => { console.error(`roles_client: ${e.message}`); process.exit(1); });
