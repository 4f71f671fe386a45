/**
 * Tributary for Google Sheets: the add-on's server side (menu, sidebar, calls to the backend).
 *
 * The sidebar (Sidebar.html) calls the public functions below through google.script.run; each one
 * POSTs JSON to the Tributary backend (/sheets/v1/...) with the user's Google ID token as Bearer
 * and, when the call touches the sheet, the user's OAuth access token in the body. The backend
 * verifies the ID token, reads and writes the sheet itself, charges, and answers JSON; a problem
 * (application/problem+json) becomes an Error whose message is the backend's `detail` sentence,
 * which the sidebar shows as is. Nothing here decides prices or rows: the backend does.
 */

// Filled in by `tributary sheets-addon bundle --backend-url URL` (and in appsscript.json's
// urlFetchWhitelist). The repository's copy keeps the placeholder.
var TRIBUTARY_BACKEND_URL = '__TRIBUTARY_BACKEND_URL__';
var TRIBUTARY_API_PREFIX = '/sheets/v1';
// The job a user started on a spreadsheet, so reopening the sidebar resumes it (results wait for a
// fresh OAuth token when the sidebar was closed). One user property per spreadsheet.
var TRIBUTARY_JOB_PROPERTY_PREFIX = 'tributary.job.';
var TRIBUTARY_FINISHED_STATUSES = ['done', 'incomplete', 'cancelled', 'failed'];

/** Adds "Extensions > Tributary > Enrich selected rows" (the add-on menu is named after the add-on). */
function onOpen(e) {
  SpreadsheetApp.getUi().createAddonMenu().addItem('Enrich selected rows', 'showSidebar').addToUi();
}

/** Installing from the Marketplace does not fire onOpen for the open document: add the menu now. */
function onInstall(e) {
  onOpen(e);
}

/** Opens the Tributary sidebar. */
function showSidebar() {
  var html = HtmlService.createHtmlOutputFromFile('Sidebar').setTitle('Tributary');
  SpreadsheetApp.getUi().showSidebar(html);
}

/** Who the user is for Tributary (member, team, balance) and the job they left running here. */
function getSession() {
  var session = tributaryPost_('/session', {});
  session.active_job_id = tributaryActiveJob_();
  return session;
}

/** The active selection as the backend sees it: header row, detected mapping, suggested outputs. */
function getSelection() {
  var sheet = tributaryActiveSheet_();
  var selection = tributaryPost_('/selection', { sheet: sheet, oauth_token: tributaryOAuthToken_() });
  return { sheet: sheet, selection: selection };
}

/** The exact cost of enriching the selection with this mapping, before anything runs. */
function preview(request) {
  return tributaryPost_('/preview', tributaryJobBody_(request));
}

/** Starts an enrichment job; the backend answers 202 with the job's view. */
function startJob(request) {
  var job = tributaryPost_('/jobs', tributaryJobBody_(request));
  tributaryRemember_(request.sheet.spreadsheet_id, job);
  return job;
}

/** Progress of a job; each poll hands the backend a fresh OAuth token so it can write results. */
function pollJob(jobId) {
  var job = tributaryPost_(tributaryJobPath_(jobId, 'poll'), { oauth_token: tributaryOAuthToken_() });
  tributaryRemember_(tributarySpreadsheetId_(), job);
  return job;
}

/** Stops a job: rows not yet looked up are not charged. */
function cancelJob(jobId) {
  var job = tributaryPost_(tributaryJobPath_(jobId, 'cancel'), {});
  tributaryRemember_(tributarySpreadsheetId_(), job);
  return job;
}

/** A new job over the rows the finished job did not enrich (nothing is charged twice). */
function retryJob(jobId, maxCredits) {
  var body = { oauth_token: tributaryOAuthToken_(), max_credits: tributaryCredits_(maxCredits) };
  var job = tributaryPost_(tributaryJobPath_(jobId, 'retry'), body);
  tributaryRemember_(tributarySpreadsheetId_(), job);
  return job;
}

// ---- helpers (a trailing underscore keeps them private: google.script.run cannot call them) ----

function tributaryActiveSheet_() {
  var spreadsheet = SpreadsheetApp.getActiveSpreadsheet();
  var sheet = spreadsheet.getActiveSheet();
  var range = sheet.getActiveRange();
  if (!range) {
    throw new Error('Select the rows to enrich (with their header row) first.');
  }
  return {
    spreadsheet_id: spreadsheet.getId(),
    sheet_id: sheet.getSheetId(),
    sheet_name: sheet.getName(),
    range_a1: range.getA1Notation()
  };
}

function tributarySpreadsheetId_() {
  return SpreadsheetApp.getActiveSpreadsheet().getId();
}

// Only the fields of the contract go out: whatever else the page holds stays in the page.
function tributaryJobBody_(request) {
  if (!request || !request.sheet) {
    throw new Error('Nothing selected: choose the rows to enrich first.');
  }
  return {
    sheet: {
      spreadsheet_id: request.sheet.spreadsheet_id,
      sheet_id: request.sheet.sheet_id,
      sheet_name: request.sheet.sheet_name,
      range_a1: request.sheet.range_a1
    },
    oauth_token: tributaryOAuthToken_(),
    mapping: request.mapping || {},
    want: { email: Boolean(request.want && request.want.email), mobile: Boolean(request.want && request.want.mobile) },
    output: request.output || { mode: 'new_columns', columns: {} },
    max_credits: tributaryCredits_(request.max_credits)
  };
}

function tributaryCredits_(value) {
  if (value === null || value === undefined || value === '') {
    return null;
  }
  var credits = Number(value);
  if (!Number.isInteger(credits) || credits < 0) {
    throw new Error('Spend cap: enter a whole number of credits (or leave it empty for no cap).');
  }
  return credits;
}

function tributaryJobPath_(jobId, action) {
  var id = Number(jobId);
  if (!Number.isInteger(id) || id <= 0) {
    throw new Error('No such job: ' + jobId + '.');
  }
  return '/jobs/' + id + '/' + action;
}

function tributaryOAuthToken_() {
  return ScriptApp.getOAuthToken();
}

function tributaryIdentityToken_() {
  var token = ScriptApp.getIdentityToken();
  if (!token) {
    throw new Error('Google gave no identity token: the add-on needs the openid and email scopes; reinstall it.');
  }
  return token;
}

function tributaryBackendUrl_() {
  // The placeholder does not start with http: an unbundled copy says so instead of fetching it.
  if (!/^https?:\/\//.test(TRIBUTARY_BACKEND_URL)) {
    throw new Error('This copy of the add-on has no backend URL: bundle it with `tributary sheets-addon bundle`.');
  }
  return TRIBUTARY_BACKEND_URL.replace(/\/+$/, '');
}

function tributaryPost_(path, body) {
  var url = tributaryBackendUrl_() + TRIBUTARY_API_PREFIX + path;
  var options = {
    method: 'post',
    contentType: 'application/json',
    headers: { Authorization: 'Bearer ' + tributaryIdentityToken_(), Accept: 'application/json' },
    payload: JSON.stringify(body),
    muteHttpExceptions: true,
    followRedirects: false
  };
  var response;
  try {
    response = UrlFetchApp.fetch(url, options);
  } catch (err) {
    throw new Error('Cannot reach Tributary at ' + tributaryBackendUrl_() + ': ' + (err && err.message ? err.message : err));
  }
  return tributaryAnswer_(response);
}

function tributaryAnswer_(response) {
  var status = response.getResponseCode();
  var text = response.getContentText();
  var parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch (err) {
    parsed = null;
  }
  if (status >= 200 && status < 300) {
    if (parsed === null || typeof parsed !== 'object') {
      throw new Error('Tributary answered HTTP ' + status + ' without a JSON body.');
    }
    return parsed;
  }
  if (parsed && typeof parsed === 'object' && (parsed.detail || parsed.title)) {
    throw new Error(String(parsed.detail || parsed.title));
  }
  throw new Error('Tributary answered HTTP ' + status + ': try again, or tell your admin if it persists.');
}

function tributaryActiveJob_() {
  var value = PropertiesService.getUserProperties().getProperty(TRIBUTARY_JOB_PROPERTY_PREFIX + tributarySpreadsheetId_());
  return value ? Number(value) : null;
}

function tributaryRemember_(spreadsheetId, job) {
  var properties = PropertiesService.getUserProperties();
  var key = TRIBUTARY_JOB_PROPERTY_PREFIX + spreadsheetId;
  if (TRIBUTARY_FINISHED_STATUSES.indexOf(job.status) >= 0) {
    // Forget it only if it is the job remembered here (an old job's poll keeps a newer one).
    if (properties.getProperty(key) === String(job.job_id)) {
      properties.deleteProperty(key);
    }
  } else {
    properties.setProperty(key, String(job.job_id));
  }
}
