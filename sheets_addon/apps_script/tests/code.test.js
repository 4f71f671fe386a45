'use strict';
// Code.gs under Node's test runner: exactly what it sends to the backend for a given selection
// (URL, headers, JSON body), how backend problems become the sidebar's sentence, the menu.

const test = require('node:test');
const assert = require('node:assert/strict');
const { makeWorld, response, problem } = require('./stubs');

const BACKEND = 'https://tributary.example.test';
const SHEET = { spreadsheet_id: '1AbCdEfGh', sheet_id: 1234567, sheet_name: 'Leads 2026', range_a1: 'A1:F200' };
const JOB_VIEW = {
  job_id: 42, status: 'queued', rows_total: 199, rows_done: 0, rows_written: 0, rows_waiting: 0,
  credits_spent: 0, percent: 0, message: null, summary: null, retryable_rows: 0,
};
const REQUEST = {
  sheet: SHEET,
  mapping: { email: 'C', first_name: 'A', last_name: 'B', company: 'D' },
  want: { email: true, mobile: true },
  output: { mode: 'new_columns', columns: {} },
  max_credits: 500,
};

// Objects made inside the vm context have that realm's prototypes: compare them as plain JSON.
const plain = (value) => JSON.parse(JSON.stringify(value));

function onlyFetch(world) {
  assert.equal(world.calls.fetch.length, 1, 'exactly one request to the backend');
  return world.calls.fetch[0];
}

function assertPost(sent, path, body, oauth) {
  assert.equal(sent.url, BACKEND + '/sheets/v1' + path);
  assert.equal(sent.params.method, 'post');
  assert.equal(sent.params.contentType, 'application/json');
  assert.equal(sent.params.muteHttpExceptions, true);
  assert.equal(sent.params.followRedirects, false);
  assert.deepEqual(plain(sent.params.headers), { Authorization: 'Bearer id-token-xyz', Accept: 'application/json' });
  assert.deepEqual(sent.body, body);
  assert.equal(JSON.stringify(sent.body).includes('ya29.oauth-token'), oauth, 'the OAuth token goes only where the sheet is touched');
}

test('onOpen adds "Enrich selected rows" to the add-on menu (Extensions > Tributary)', () => {
  const world = makeWorld();
  world.gs.onOpen({ authMode: 'LIMITED' });
  assert.equal(world.calls.menus.length, 1);
  assert.deepEqual(world.calls.menus[0].items, [['Enrich selected rows', 'showSidebar']]);
  assert.equal(world.calls.menus[0].added, true);
  assert.equal(typeof world.gs[world.calls.menus[0].items[0][1]], 'function', 'the item names a real function');
  assert.equal(world.calls.fetch.length, 0, 'opening a sheet never calls the backend');
});

test('onInstall adds the same menu', () => {
  const world = makeWorld();
  world.gs.onInstall({ authMode: 'FULL' });
  assert.deepEqual(world.calls.menus.map((m) => m.items), [[['Enrich selected rows', 'showSidebar']]]);
});

test('showSidebar shows Sidebar.html titled Tributary', () => {
  const world = makeWorld();
  world.gs.showSidebar();
  assert.deepEqual(world.calls.htmlFiles, ['Sidebar']);
  assert.equal(world.calls.sidebars.length, 1);
  assert.equal(world.calls.sidebars[0].title, 'Tributary');
});

test('no custom spreadsheet function: no global is documented @customfunction', () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const { PROJECT_DIR } = require('./stubs');
  for (const file of fs.readdirSync(PROJECT_DIR).filter((f) => f.endsWith('.gs'))) {
    assert.doesNotMatch(fs.readFileSync(path.join(PROJECT_DIR, file), 'utf8'), /@customfunction/);
  }
});

test('getSession posts {} with the ID token and returns the member plus the job left running here', () => {
  const world = makeWorld();
  world.calls.properties['tributary.job.1AbCdEfGh'] = '41';
  const session = { email: 'ann@acme.test', member_name: 'Ann', team: { id: 1, name: 'Acme' }, role: 'member', balance_credits: 900 };
  world.answer(response(200, session));
  const got = world.gs.getSession();
  assertPost(onlyFetch(world), '/session', {}, false);
  assert.deepEqual(plain(got), Object.assign({}, session, { active_job_id: 41 }));
});

test('getSelection sends the active sheet (gid, name, A1 range without the sheet name) and the OAuth token', () => {
  const world = makeWorld();
  const selection = { header_row: 1, first_data_row: 2, last_data_row: 200, rows: 199, max_rows: 10000, columns: [], fields: ['email'], outputs: {} };
  world.answer(response(200, selection));
  const got = world.gs.getSelection();
  assertPost(onlyFetch(world), '/selection', { sheet: SHEET, oauth_token: 'ya29.oauth-token' }, true);
  assert.deepEqual(plain(got), { sheet: SHEET, selection });
});

test('getSelection with nothing selected says so and calls nothing', () => {
  const world = makeWorld({ range: null });
  assert.throws(() => world.gs.getSelection(), { message: 'Select the rows to enrich (with their header row) first.' });
  assert.equal(world.calls.fetch.length, 0);
});

test('preview sends exactly the contract body, whatever else the page passes', () => {
  const world = makeWorld();
  const answer = { rows: 199, rows_with_identifier: 190, rows_without_identifier: 9, max_credits: 1710, free_rows: 3, balance_credits: 900, cap_credits: 500, affordable: true, outputs: {} };
  world.answer(response(200, answer));
  const got = world.gs.preview(Object.assign({ sneaky: 'x', sheet: Object.assign({ extra: 1 }, SHEET) }, REQUEST, { sheet: Object.assign({ extra: 1 }, SHEET) }));
  assertPost(onlyFetch(world), '/preview', {
    sheet: SHEET, oauth_token: 'ya29.oauth-token', mapping: REQUEST.mapping, want: { email: true, mobile: true },
    output: { mode: 'new_columns', columns: {} }, max_credits: 500,
  }, true);
  assert.deepEqual(plain(got), answer);
});

test('picked output columns and no cap go out as given (null cap)', () => {
  const world = makeWorld();
  world.answer(response(200, { rows: 1 }));
  const request = Object.assign({}, REQUEST, {
    want: { email: true, mobile: false }, output: { mode: 'columns', columns: { email: 'G', status: 'I' } }, max_credits: '',
  });
  world.gs.preview(request);
  const body = onlyFetch(world).body;
  assert.deepEqual(body.output, { mode: 'columns', columns: { email: 'G', status: 'I' } });
  assert.deepEqual(body.want, { email: true, mobile: false });
  assert.equal(body.max_credits, null);
});

test('a spend cap that is not a whole number is refused before anything is sent', () => {
  const world = makeWorld();
  for (const cap of [-1, 2.5, 'ten']) {
    assert.throws(() => world.gs.preview(Object.assign({}, REQUEST, { max_credits: cap })), { message: /Spend cap: enter a whole number/ });
  }
  assert.equal(world.calls.fetch.length, 0);
});

test('startJob posts /jobs and remembers the job for this spreadsheet until it finishes', () => {
  const world = makeWorld();
  world.answer(response(202, JOB_VIEW));
  const job = world.gs.startJob(REQUEST);
  assertPost(onlyFetch(world), '/jobs', {
    sheet: SHEET, oauth_token: 'ya29.oauth-token', mapping: REQUEST.mapping, want: REQUEST.want, output: REQUEST.output, max_credits: 500,
  }, true);
  assert.equal(job.job_id, 42);
  assert.deepEqual(world.calls.properties, { 'tributary.job.1AbCdEfGh': '42' });

  world.answer(response(200, Object.assign({}, JOB_VIEW, { status: 'running', rows_done: 50, percent: 25 })));
  world.gs.pollJob(42);
  assert.deepEqual(world.calls.properties, { 'tributary.job.1AbCdEfGh': '42' });
  world.answer(response(200, Object.assign({}, JOB_VIEW, { status: 'done', rows_done: 199, percent: 100 })));
  world.gs.pollJob(42);
  assert.deepEqual(world.calls.properties, {}, 'a finished job is forgotten');
});

test('pollJob sends a fresh OAuth token; cancelJob sends nothing but the ID token', () => {
  const world = makeWorld();
  world.answer(response(200, Object.assign({}, JOB_VIEW, { status: 'running' })));
  world.gs.pollJob(42);
  assertPost(world.calls.fetch[0], '/jobs/42/poll', { oauth_token: 'ya29.oauth-token' }, true);
  world.answer(response(200, Object.assign({}, JOB_VIEW, { status: 'cancelled' })));
  world.gs.cancelJob('42');
  assertPost(world.calls.fetch[1], '/jobs/42/cancel', {}, false);
});

test('retryJob posts the OAuth token and the cap, and remembers the new job', () => {
  const world = makeWorld();
  world.answer(response(202, Object.assign({}, JOB_VIEW, { job_id: 43 })));
  const job = world.gs.retryJob(42, 100);
  assertPost(onlyFetch(world), '/jobs/42/retry', { oauth_token: 'ya29.oauth-token', max_credits: 100 }, true);
  assert.equal(job.job_id, 43);
  assert.deepEqual(world.calls.properties, { 'tributary.job.1AbCdEfGh': '43' });
});

test('a job id that is not a positive whole number never reaches a URL', () => {
  const world = makeWorld();
  for (const id of ['../session', '1/cancel', 0, -3, 'abc', null]) {
    assert.throws(() => world.gs.pollJob(id), { message: /^No such job: / });
  }
  assert.equal(world.calls.fetch.length, 0);
});

test("a problem+json answer becomes an Error whose message is the backend's detail", () => {
  const world = makeWorld();
  const detail = 'ann@gmail.test is not a member of a Tributary team: ask your admin to add you';
  world.answer(problem(403, 'Forbidden', detail));
  assert.throws(() => world.gs.getSession(), (err) => err.message === detail);

  world.answer(problem(422, 'Unprocessable Content', 'mapping: no identifier column (map an email, a LinkedIn URL, or a name and a company)',
    { errors: [{ field: 'mapping', message: 'no identifier column' }] }));
  assert.throws(() => world.gs.preview(REQUEST), { message: 'mapping: no identifier column (map an email, a LinkedIn URL, or a name and a company)' });

  world.answer(problem(401, 'Unauthorized', 'the Google ID token has expired: reopen the sidebar'));
  assert.throws(() => world.gs.pollJob(42), { message: 'the Google ID token has expired: reopen the sidebar' });
});

test('a problem without detail falls back to its title; a non-JSON error page gets a plain sentence', () => {
  const world = makeWorld();
  world.answer(response(404, { title: 'Not Found', status: 404 }, 'application/problem+json'));
  assert.throws(() => world.gs.pollJob(7), { message: 'Not Found' });
  world.answer(response(502, '<html>Bad Gateway</html>', 'text/html'));
  assert.throws(() => world.gs.getSession(), { message: 'Tributary answered HTTP 502: try again, or tell your admin if it persists.' });
  world.answer(response(200, 'not json', 'text/plain'));
  assert.throws(() => world.gs.getSession(), { message: 'Tributary answered HTTP 200 without a JSON body.' });
});

test('an unreachable backend is named', () => {
  const world = makeWorld();
  world.answer(new Error('DNS error: tributary.example.test'));
  assert.throws(() => world.gs.getSession(), { message: 'Cannot reach Tributary at https://tributary.example.test: DNS error: tributary.example.test' });
});

test('without an identity token (scopes missing) nothing is sent', () => {
  const world = makeWorld({ identityToken: null });
  assert.throws(() => world.gs.getSession(), { message: /no identity token: the add-on needs the openid and email scopes/ });
  assert.equal(world.calls.fetch.length, 0);
});

test('the repository copy (placeholder URL) refuses to call anything', () => {
  const world = makeWorld({ backendUrl: null });
  assert.throws(() => world.gs.getSession(), { message: /has no backend URL: bundle it with `tributary sheets-addon bundle`/ });
  assert.equal(world.calls.fetch.length, 0);
});

test('a backend URL with a path prefix and a trailing slash joins cleanly', () => {
  const world = makeWorld({ backendUrl: 'https://example.test/tributary/' });
  world.answer(response(200, { email: 'a@b.test', team: { id: 1, name: 'T' } }));
  world.gs.getSession();
  assert.equal(onlyFetch(world).url, 'https://example.test/tributary/sheets/v1/session');
});

test('helpers end with an underscore so google.script.run cannot call them', () => {
  const world = makeWorld();
  const publicNames = Object.keys(world.gs).filter((k) => typeof world.gs[k] === 'function' && !k.endsWith('_')).sort();
  assert.deepEqual(publicNames, ['cancelJob', 'getSelection', 'getSession', 'onInstall', 'onOpen', 'pollJob', 'preview', 'retryJob', 'showSidebar', 'startJob']);
});

test('the manifest asks for exactly the scopes the add-on needs, none .currentonly, and allowlists the backend', () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const { PROJECT_DIR } = require('./stubs');
  const manifest = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, 'appsscript.json'), 'utf8'));
  assert.deepEqual(manifest.oauthScopes, [
    'openid',
    'https://www.googleapis.com/auth/userinfo.email',
    'https://www.googleapis.com/auth/spreadsheets',
    'https://www.googleapis.com/auth/script.container.ui',
    'https://www.googleapis.com/auth/script.external_request',
  ]);
  assert.deepEqual(manifest.urlFetchWhitelist, ['__TRIBUTARY_BACKEND_URL__/']);
  assert.equal(manifest.runtimeVersion, 'V8');
});
