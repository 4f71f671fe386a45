'use strict';
// Stand-ins for the Apps Script services Code.gs uses, recording every call, and a loader that runs
// the project's .gs files in a fresh vm context with them (as Apps Script runs them: one global
// scope shared by every file).

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const PROJECT_DIR = path.resolve(__dirname, '..');

function response(status, body, contentType) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    getResponseCode: () => status,
    getContentText: () => text,
    getHeaders: () => ({ 'Content-Type': contentType || 'application/json' }),
  };
}

function problem(status, title, detail, extra) {
  return response(status, Object.assign({ type: 'about:blank', title, status, detail }, extra || {}),
    'application/problem+json');
}

/**
 * A world: a spreadsheet with an active sheet and range, tokens, a queue of backend answers.
 * `options.range` null means nothing is selected.
 */
function makeWorld(options) {
  const opts = Object.assign({
    spreadsheetId: '1AbCdEfGh',
    sheetId: 1234567,
    sheetName: 'Leads 2026',
    range: 'A1:F200',
    identityToken: 'id-token-xyz',
    oauthToken: 'ya29.oauth-token',
    backendUrl: 'https://tributary.example.test',
  }, options || {});
  const calls = { fetch: [], menus: [], sidebars: [], htmlFiles: [], properties: {} };
  const answers = [];

  const ui = {
    createAddonMenu() {
      const menu = { items: [], added: false };
      calls.menus.push(menu);
      const builder = {
        addItem(caption, fn) { menu.items.push([caption, fn]); return builder; },
        addSeparator() { menu.items.push(['---']); return builder; },
        addToUi() { menu.added = true; },
      };
      return builder;
    },
    createMenu() { throw new Error('an add-on adds its items to the add-on menu, not a menu of its own'); },
    showSidebar(html) { calls.sidebars.push(html); },
  };
  const range = opts.range === null ? null : { getA1Notation: () => opts.range };
  const sheet = {
    getSheetId: () => opts.sheetId,
    getName: () => opts.sheetName,
    getActiveRange: () => range,
  };
  const spreadsheet = { getId: () => opts.spreadsheetId, getActiveSheet: () => sheet };

  const userProperties = {
    getProperty: (key) => (key in calls.properties ? calls.properties[key] : null),
    setProperty: (key, value) => { calls.properties[key] = String(value); return userProperties; },
    deleteProperty: (key) => { delete calls.properties[key]; return userProperties; },
  };

  const services = {
    SpreadsheetApp: { getUi: () => ui, getActiveSpreadsheet: () => spreadsheet },
    ScriptApp: {
      getIdentityToken: () => opts.identityToken,
      getOAuthToken: () => opts.oauthToken,
    },
    UrlFetchApp: {
      fetch(url, params) {
        calls.fetch.push({ url, params, body: params && params.payload ? JSON.parse(params.payload) : undefined });
        const next = answers.shift();
        if (next === undefined) { throw new Error('test: no answer queued for ' + url); }
        if (next instanceof Error) { throw next; }
        return next;
      },
    },
    HtmlService: {
      createHtmlOutputFromFile(name) {
        calls.htmlFiles.push(name);
        const output = { file: name, title: null, setTitle(title) { output.title = title; return output; } };
        return output;
      },
    },
    PropertiesService: { getUserProperties: () => userProperties },
  };

  const context = vm.createContext(Object.assign({}, services));
  for (const file of fs.readdirSync(PROJECT_DIR).filter((f) => f.endsWith('.gs')).sort()) {
    let source = fs.readFileSync(path.join(PROJECT_DIR, file), 'utf8');
    if (opts.backendUrl !== null) {
      // What `tributary sheets-addon bundle` does to the copy it writes out.
      source = source.split('__TRIBUTARY_BACKEND_URL__').join(opts.backendUrl);
    }
    vm.runInContext(source, context, { filename: file });
  }
  return {
    gs: context,
    calls,
    answer(...responses) { answers.push(...responses); },
    pending: () => answers.length,
  };
}

module.exports = { makeWorld, response, problem, PROJECT_DIR };
