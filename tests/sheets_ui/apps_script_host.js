'use strict';
// A loopback stand-in for Google's Apps Script host, for the browser test of the sidebar.
//
// It runs the bundled project's real Code.gs (in a vm context, as Apps Script runs .gs files) with
// SpreadsheetApp/ScriptApp/PropertiesService describing one user's open sheet, and a UrlFetchApp
// that makes real, synchronous HTTP requests (as Apps Script's does) to the Tributary backend on
// loopback. It serves the bundled Sidebar.html with a google.script.run stand-in that forwards each
// call to POST /__run/<function>, where the host calls that Code.gs function and answers
// {"ok": value} or {"error": message} (the failure handler then gets an Error with that message).
//
// Usage: node apps_script_host.js CONFIG.json — prints "listening <port>" once ready.
// CONFIG: {bundleDir, spreadsheetId, sheetId, sheetName, rangeA1, identityToken, oauthToken, pollMs}.
// POST /__config {identityToken?, oauthToken?, rangeA1?} changes the user's state; GET /__log lists
// every request Code.gs sent (url, method, headers, body, status, answer).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const vm = require('node:vm');
const { Worker, MessageChannel, receiveMessageOnPort } = require('node:worker_threads');

const FETCH_TIMEOUT_MS = 60000;
const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const log = [];

// UrlFetchApp.fetch is synchronous: a worker thread does the request while this thread waits on a
// shared flag (Atomics.wait), then reads the answer from a message port.
const FETCH_WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', async ({ request, port, flag }) => {
  let answer;
  try {
    const res = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, redirect: 'manual' });
    answer = { status: res.status, headers: Object.fromEntries(res.headers.entries()), text: await res.text() };
  } catch (err) {
    answer = { error: String(err && err.cause ? err.cause.message || err.cause : err) };
  }
  port.postMessage(answer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});`;
const fetchWorker = new Worker(FETCH_WORKER, { eval: true });
fetchWorker.unref();

function syncFetch(request) {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  fetchWorker.postMessage({ request, port: port2, flag }, [port2]);
  if (Atomics.wait(flag, 0, 0, FETCH_TIMEOUT_MS) === 'timed-out') {
    throw new Error('Timeout: ' + request.url);
  }
  const answer = receiveMessageOnPort(port1).message;
  port1.close();
  return answer;
}

const UrlFetchApp = {
  fetch(url, params) {
    const p = params || {};
    const headers = Object.assign({}, p.headers || {});
    if (p.contentType) { headers['Content-Type'] = p.contentType; }
    const request = { url, method: String(p.method || 'get').toUpperCase(), headers, body: p.payload };
    const entry = { url, method: request.method, headers, body: p.payload === undefined ? null : JSON.parse(p.payload) };
    log.push(entry);
    const answer = syncFetch(request);
    if (answer.error) { throw new Error('Address unavailable: ' + url + ' (' + answer.error + ')'); }
    entry.status = answer.status;
    try { entry.answer = JSON.parse(answer.text); } catch (err) { entry.answer = answer.text; }
    if (!p.muteHttpExceptions && answer.status >= 400) {
      throw new Error('Request failed for ' + url + ' returned code ' + answer.status);
    }
    return {
      getResponseCode: () => answer.status,
      getContentText: () => answer.text,
      getHeaders: () => answer.headers,
    };
  },
};

const properties = {};
const sandbox = {
  UrlFetchApp,
  SpreadsheetApp: {
    getActiveSpreadsheet: () => ({
      getId: () => config.spreadsheetId,
      getActiveSheet: () => ({
        getSheetId: () => config.sheetId,
        getName: () => config.sheetName,
        getActiveRange: () => (config.rangeA1 ? { getA1Notation: () => config.rangeA1 } : null),
      }),
    }),
  },
  ScriptApp: { getIdentityToken: () => config.identityToken, getOAuthToken: () => config.oauthToken },
  PropertiesService: {
    getUserProperties: () => ({
      getProperty: (k) => (k in properties ? properties[k] : null),
      setProperty: (k, v) => { properties[k] = String(v); },
      deleteProperty: (k) => { delete properties[k]; },
    }),
  },
};
const gs = vm.createContext(sandbox);
for (const file of fs.readdirSync(config.bundleDir).filter((f) => f.endsWith('.gs')).sort()) {
  vm.runInContext(fs.readFileSync(path.join(config.bundleDir, file), 'utf8'), gs, { filename: file });
}

// What google.script.run looks like to the page: a chain of with*Handler calls ending in a call
// named after a server function, answered asynchronously.
const RUN_STAND_IN = `<script>
window.TRIBUTARY_POLL_MS = ${Number(config.pollMs) || 3000};
(function () {
  function runner(onSuccess, onFailure) {
    return new Proxy({}, { get: function (_, name) {
      if (name === 'withSuccessHandler') { return function (fn) { return runner(fn, onFailure); }; }
      if (name === 'withFailureHandler') { return function (fn) { return runner(onSuccess, fn); }; }
      if (name === 'withUserObject') { return function () { return runner(onSuccess, onFailure); }; }
      return function () {
        var args = Array.prototype.slice.call(arguments);
        fetch('/__run/' + encodeURIComponent(name), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ args: args }) })
          .then(function (r) { return r.json(); })
          .then(function (a) {
            if ('error' in a) { if (onFailure) { onFailure(new Error(a.error)); } }
            else if (onSuccess) { onSuccess(a.ok); }
          });
      };
    } });
  }
  window.google = { script: { run: runner(null, null) } };
})();
</script>`;

function sidebarPage() {
  const html = fs.readFileSync(path.join(config.bundleDir, 'Sidebar.html'), 'utf8');
  return html.replace('<head>', '<head>\n' + RUN_STAND_IN);
}

function runServerFunction(name, args) {
  // Apps Script lets the page call only top-level functions without a trailing underscore.
  if (name.endsWith('_') || typeof gs[name] !== 'function') {
    return { error: 'Script function not found: ' + name };
  }
  try {
    const value = gs[name].apply(null, args);
    return { ok: value === undefined ? null : JSON.parse(JSON.stringify(value)) };
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}));
  });
}

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'GET' && url.pathname === '/') {
    return send(res, 200, 'text/html; charset=utf-8', sidebarPage());
  }
  if (req.method === 'GET' && url.pathname === '/__log') {
    return send(res, 200, 'application/json', JSON.stringify(log));
  }
  if (req.method === 'POST' && url.pathname === '/__config') {
    Object.assign(config, await readBody(req));
    return send(res, 200, 'application/json', '{}');
  }
  if (req.method === 'POST' && url.pathname.startsWith('/__run/')) {
    const body = await readBody(req);
    const name = decodeURIComponent(url.pathname.slice('/__run/'.length));
    return send(res, 200, 'application/json', JSON.stringify(runServerFunction(name, body.args || [])));
  }
  return send(res, 404, 'text/plain', 'not found');
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write('listening ' + server.address().port + '\n');
});
process.stdin.on('end', () => process.exit(0));  // the test closes stdin to stop the host
process.stdin.resume();
