// certgate's SCIM 2.0 test peer: a real third-party service provider built on scimmy (resource
// schemas, PatchOp, BulkRequest, ListResponse) and scimmy-routers (the RFC 7644 HTTP endpoints),
// with an in-memory store of Users and Groups.
//
// Follows RFC 7643 / RFC 7644 as summarised in shared/reference/idp.md section 4
// (https://www.rfc-editor.org/rfc/rfc7643 , https://www.rfc-editor.org/rfc/rfc7644).
//
// What this file adds on top of scimmy, and why:
//  - Filters (RFC 7644 3.4.2.2) are parsed and evaluated here: scimmy 1.3.5's filter lexer cannot
//    read a JSON string holding an escaped quote (\") and compares strings case-sensitively,
//    whereas RFC 7643 2.2 / 7 makes e.g. userName and emails.value caseExact=false.
//  - filter.maxResults caps `count` (RFC 7643 5); scimmy's ListResponse defaults to 20.
//  - Versioning (RFC 7644 3.14): meta.version, an ETag header, and If-Match (412 on mismatch).
//  - Member values of a Group must name an existing User (400 invalidValue otherwise) and are
//    kept unique, so adding a present member changes nothing (PATCH answers 204).
//
// Command line:
//   --port N            listen on 127.0.0.1:N (0 = any); prints "listening <port>" once ready
//   --token T           require "Authorization: Bearer T" (401 with a SCIM error otherwise)
//   --token-file FILE   the same, with the token read from FILE (keeps it out of argv)
//   --client ID:SECRET  also serve POST /oauth/token (client credentials, Basic or form) whose
//                       access tokens are accepted as bearer tokens
//   --seed FILE.json    {"users": [...], "groups": [...]} preloaded with their ids
//   --state-file FILE   load the store from FILE when it exists, save it after every write
//   --max-results N     ServiceProviderConfig filter.maxResults (default 200)
//   --bulk on|off       advertise and serve POST /Bulk (default on)
//   --bulk-max-operations N, --bulk-max-payload BYTES   (defaults 1000, 1048576)
//   --etag on|off       advertise versioning and honour If-Match (default on)
//   --fault JSON        inject a failure (repeatable), see matchFault() below
//   --watch-stdin       exit when standard input closes (the test process went away)
//
// Test-only endpoints outside the SCIM base path /scim/v2 (no authentication):
//   GET /_control/requests  every SCIM request received: method, path, query, headers, body, status
//   DELETE /_control/requests
//   PUT /_control/faults    replace the fault list with the JSON array in the body
//   GET /_control/state     the store: {"users": [...], "groups": [...]}

import crypto from "node:crypto";
import fs from "node:fs";
import process from "node:process";

import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const BASE = "/scim/v2";

// ---- options ---------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = {
    port: 0, token: "", clients: [], seed: "", stateFile: "", maxResults: 200, bulk: true,
    bulkMaxOperations: 1000, bulkMaxPayload: 1048576, etag: true, faults: [], watchStdin: false,
  };
  const onOff = (v, name) => {
    if (v === "on") return true;
    if (v === "off") return false;
    throw new Error(`${name} expects on or off, got '${v}'`);
  };
  const int = (v, name) => {
    if (!/^\d+$/.test(v ?? "")) throw new Error(`${name} expects a whole number, got '${v}'`);
    return Number(v);
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--port": opts.port = int(next(), a); break;
      case "--token": opts.token = next(); break;
      case "--token-file": opts.token = fs.readFileSync(next(), "utf8").trim(); break;
      case "--client": {
        const v = next();
        const colon = v.indexOf(":");
        if (colon <= 0) throw new Error("--client expects ID:SECRET");
        opts.clients.push({id: v.slice(0, colon), secret: v.slice(colon + 1)});
        break;
      }
      case "--seed": opts.seed = next(); break;
      case "--state-file": opts.stateFile = next(); break;
      case "--max-results": opts.maxResults = int(next(), a); break;
      case "--bulk": opts.bulk = onOff(next(), a); break;
      case "--bulk-max-operations": opts.bulkMaxOperations = int(next(), a); break;
      case "--bulk-max-payload": opts.bulkMaxPayload = int(next(), a); break;
      case "--etag": opts.etag = onOff(next(), a); break;
      case "--fault": opts.faults.push(validateFault(JSON.parse(next()))); break;
      case "--watch-stdin": opts.watchStdin = true; break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return opts;
}

// A fault: {method?, path (regex on the path below /scim/v2), query? (regex on the raw query),
//           nth? (first matching request that fails, 1-based, default 1),
//           times? (how many matching requests fail from the nth on; 0 = all, default 1),
//           status?, retryAfter?, scimType?, detail?, bumpVersion?, delayMs?}
// With status the request is answered with that status and a SCIM error body (plus Retry-After
// when given) and never reaches the store. With bumpVersion the targeted resource gets a new
// version first (a concurrent writer) and the request then proceeds normally. With delayMs (and
// no status) the request waits that long and then proceeds normally: it still takes effect when
// the client has gone away meanwhile, like a server that received a request before the client
// crashed.
function validateFault(f) {
  if (typeof f !== "object" || f === null || typeof f.path !== "string")
    throw new Error("a fault needs at least a path regex");
  if (f.status === undefined && !f.bumpVersion && f.delayMs === undefined)
    throw new Error("a fault needs status, bumpVersion or delayMs");
  return {method: f.method, path: new RegExp(f.path), query: f.query ? new RegExp(f.query) : null,
          nth: f.nth ?? 1, times: f.times ?? 1, status: f.status, retryAfter: f.retryAfter,
          scimType: f.scimType, detail: f.detail, bumpVersion: !!f.bumpVersion,
          delayMs: f.delayMs ?? 0, seen: 0,
          source: f};
}

// ---- the store ---------------------------------------------------------------------------------

const users = new Map();   // id -> stored user (SCIM shape without meta.location)
const groups = new Map();  // id -> stored group
let memberIndexDirty = true;
let memberIndex = new Map();  // user id -> [group ids]

function now() {
  return new Date().toISOString();
}

function newMeta(resourceType) {
  const t = now();
  return {resourceType, created: t, lastModified: t, version: 1};
}

// The meta of a record read from a seed or state file: its version and dates when it has them.
function restoredMeta(resourceType, meta) {
  const fresh = newMeta(resourceType);
  if (!meta) return fresh;
  return {resourceType, created: meta.created ?? fresh.created,
          lastModified: meta.lastModified ?? fresh.lastModified,
          version: Number.isInteger(meta.version) ? meta.version : fresh.version};
}

function versionTag(meta) {
  return `W/"${meta.version}"`;
}

// JSON with object keys sorted, so that two records compare by content alone.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value).filter((k) => k !== "meta" && value[k] !== undefined).sort()
        .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  return JSON.stringify(value);
}

function touch(record) {
  record.meta.version += 1;
  record.meta.lastModified = now();
}

function userMemberships(id) {
  if (memberIndexDirty) {
    memberIndex = new Map();
    for (const g of groups.values())
      for (const m of g.members ?? []) {
        if (!memberIndex.has(m.value)) memberIndex.set(m.value, []);
        memberIndex.get(m.value).push(g.id);
      }
    memberIndexDirty = false;
  }
  return memberIndex.get(id) ?? [];
}

function userOut(u) {
  const groupsOf = userMemberships(u.id).map((gid) => ({
    value: gid, display: groups.get(gid)?.displayName, type: "direct"}));
  return {...u, meta: {...u.meta, version: versionTag(u.meta)},
          ...(groupsOf.length ? {groups: groupsOf} : {})};
}

function groupOut(g) {
  return {...g, meta: {...g.meta, version: versionTag(g.meta)}};
}

function userDisplay(u) {
  return u.displayName ?? u.userName;
}

// Normalises a user given in a seed or state file.
function loadUser(raw) {
  const u = {...raw};
  if (typeof u.id !== "string" || !u.id) throw new Error(`seed user without id: ${JSON.stringify(raw)}`);
  if (typeof u.userName !== "string" || !u.userName) throw new Error(`seed user ${u.id} without userName`);
  if (u.employeeNumber !== undefined) {
    u[ENTERPRISE] = {...(u[ENTERPRISE] ?? {}), employeeNumber: String(u.employeeNumber)};
    delete u.employeeNumber;
  }
  if (typeof u.email === "string") {
    u.emails = [{value: u.email, type: "work", primary: true}];
    delete u.email;
  }
  u.active = u.active ?? true;
  u.meta = restoredMeta("User", raw.meta);
  return u;
}

function loadGroup(raw) {
  const g = {...raw};
  if (typeof g.id !== "string" || !g.id) throw new Error(`seed group without id: ${JSON.stringify(raw)}`);
  const seen = new Set();
  g.members = (g.members ?? []).map((m) => (typeof m === "string" ? {value: m} : m))
      .filter((m) => !seen.has(m.value) && seen.add(m.value))
      .map((m) => ({value: m.value, display: m.display ?? (users.get(m.value) ? userDisplay(users.get(m.value)) : undefined), type: m.type ?? "User"}));
  g.meta = restoredMeta("Group", raw.meta);
  return g;
}

function loadData(data) {
  for (const u of data.users ?? []) users.set(u.id, loadUser(u));
  for (const g of data.groups ?? []) groups.set(g.id, loadGroup(g));
  memberIndexDirty = true;
}

let stateFile = "";
function saveState() {
  if (!stateFile) return;
  const data = {users: [...users.values()], groups: [...groups.values()]};
  fs.writeFileSync(stateFile + ".tmp", JSON.stringify(data, null, 1));
  fs.renameSync(stateFile + ".tmp", stateFile);
}

// ---- filters (RFC 7644 3.4.2.2) ------------------------------------------------------------------

function invalidFilter(message) {
  return new SCIMMY.Types.Error(400, "invalidFilter", message);
}

function tokenize(text) {
  const tokens = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) { i++; continue; }
    if ("()[]".includes(c)) { tokens.push({t: c}); i++; continue; }
    if (c === '"') {
      // A JSON string: find its end honouring backslash escapes, then let JSON decode it.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (j >= text.length) throw invalidFilter(`unterminated string in filter: ${text}`);
      let value;
      try {
        value = JSON.parse(text.slice(i, j + 1));
      } catch {
        throw invalidFilter(`bad string ${text.slice(i, j + 1)} in filter`);
      }
      tokens.push({t: "str", v: value});
      i = j + 1;
      continue;
    }
    const m = /^[A-Za-z0-9_$:.+\-]+/.exec(text.slice(i));
    if (!m) throw invalidFilter(`unexpected character '${c}' in filter: ${text}`);
    tokens.push({t: "word", v: m[0]});
    i += m[0].length;
  }
  return tokens;
}

const COMPARATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];

function parseFilter(text) {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const isWord = (w) => peek()?.t === "word" && peek().v.toLowerCase() === w;
  const expect = (t) => {
    if (peek()?.t !== t) throw invalidFilter(`expected '${t}' in filter: ${text}`);
    pos++;
  };
  const parseOr = () => {
    let left = parseAnd();
    while (isWord("or")) { pos++; left = {op: "or", left, right: parseAnd()}; }
    return left;
  };
  const parseAnd = () => {
    let left = parseUnary();
    while (isWord("and")) { pos++; left = {op: "and", left, right: parseUnary()}; }
    return left;
  };
  const parseUnary = () => {
    if (isWord("not")) {
      pos++;
      expect("(");
      const inner = parseOr();
      expect(")");
      return {op: "not", expr: inner};
    }
    if (peek()?.t === "(") {
      pos++;
      const inner = parseOr();
      expect(")");
      return inner;
    }
    return parseAttrExp();
  };
  const parseValue = () => {
    const tok = peek();
    if (!tok) throw invalidFilter(`missing comparison value in filter: ${text}`);
    pos++;
    if (tok.t === "str") return tok.v;
    if (tok.t === "word") {
      const w = tok.v.toLowerCase();
      if (w === "true") return true;
      if (w === "false") return false;
      if (w === "null") return null;
      if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(tok.v)) return Number(tok.v);
    }
    throw invalidFilter(`bad comparison value in filter: ${text}`);
  };
  const parseComparison = (path) => {
    const opTok = peek();
    if (opTok?.t !== "word") throw invalidFilter(`missing operator after '${path}' in filter: ${text}`);
    const op = opTok.v.toLowerCase();
    pos++;
    if (op === "pr") return {op: "pr", path};
    if (!COMPARATORS.includes(op)) throw invalidFilter(`unknown operator '${opTok.v}' in filter: ${text}`);
    return {op, path, value: parseValue()};
  };
  const parseAttrExp = () => {
    const tok = peek();
    if (tok?.t !== "word") throw invalidFilter(`expected an attribute in filter: ${text}`);
    pos++;
    const path = tok.v;
    if (peek()?.t === "[") {
      pos++;
      const inner = parseOr();
      expect("]");
      // emails[type eq "work"].value eq "x": a sub-attribute comparison on the selected values.
      if (peek()?.t === "word" && peek().v.startsWith(".")) {
        const sub = peek().v.slice(1);
        pos++;
        return {op: "valuePath", path, filter: inner, then: parseComparison(sub)};
      }
      return {op: "valuePath", path, filter: inner};
    }
    return parseComparison(path);
  };
  const tree = parseOr();
  if (pos !== tokens.length) throw invalidFilter(`unexpected '${tokens[pos].v ?? tokens[pos].t}' in filter: ${text}`);
  return tree;
}

// Splits "urn:...:User:employeeNumber" / "name.givenName" into schema URN, attribute, sub-attribute.
function splitPath(path) {
  let urn = "";
  let rest = path;
  if (path.toLowerCase().startsWith("urn:")) {
    const colon = path.lastIndexOf(":");
    urn = path.slice(0, colon);
    rest = path.slice(colon + 1);
  }
  const [attr, sub] = rest.split(".", 2);
  return {urn, attr, sub};
}

function getCi(obj, key) {
  if (obj === null || typeof obj !== "object") return undefined;
  const k = Object.keys(obj).find((name) => name.toLowerCase() === key.toLowerCase());
  return k === undefined ? undefined : obj[k];
}

function definitionAttribute(definition, fullPath) {
  try {
    return definition.attribute(fullPath);
  } catch {
    throw invalidFilter(`unknown attribute '${fullPath}' in filter`);
  }
}

// Values of `path` in `resource` (flattened over multi-valued attributes).
function valuesOf(resource, path, coreUrn) {
  const {urn, attr, sub} = splitPath(path);
  let base = resource;
  if (urn && urn.toLowerCase() !== coreUrn.toLowerCase()) base = getCi(resource, urn);
  const v = getCi(base, attr);
  const list = Array.isArray(v) ? v : v === undefined ? [] : [v];
  if (sub) return list.map((e) => getCi(e, sub)).filter((e) => e !== undefined);
  // A complex multi-valued attribute without a sub-attribute compares its "value" (RFC 7644 3.4.2.2).
  return list.map((e) => (e !== null && typeof e === "object" && "value" in e ? e.value : e));
}

function compare(op, actual, expected, caseExact) {
  if (actual === null || actual === undefined) return op === "ne" ? expected !== null : expected === null && op === "eq";
  if (typeof actual === "boolean" || typeof expected === "boolean") {
    if (op === "eq") return actual === expected;
    if (op === "ne") return actual !== expected;
    throw invalidFilter(`operator '${op}' cannot compare a boolean`);
  }
  if (typeof actual === "number" && typeof expected === "number") {
    switch (op) {
      case "eq": return actual === expected;
      case "ne": return actual !== expected;
      case "gt": return actual > expected;
      case "ge": return actual >= expected;
      case "lt": return actual < expected;
      case "le": return actual <= expected;
      default: throw invalidFilter(`operator '${op}' cannot compare a number`);
    }
  }
  let a = String(actual);
  let e = expected === null ? null : String(expected);
  if (e === null) return op === "ne";
  if (!caseExact) { a = a.toLowerCase(); e = e.toLowerCase(); }
  switch (op) {
    case "eq": return a === e;
    case "ne": return a !== e;
    case "co": return a.includes(e);
    case "sw": return a.startsWith(e);
    case "ew": return a.endsWith(e);
    case "gt": return a > e;
    case "ge": return a >= e;
    case "lt": return a < e;
    case "le": return a <= e;
    default: return false;
  }
}

function evaluate(node, resource, definition, prefix = "") {
  switch (node.op) {
    case "and": return evaluate(node.left, resource, definition, prefix) && evaluate(node.right, resource, definition, prefix);
    case "or": return evaluate(node.left, resource, definition, prefix) || evaluate(node.right, resource, definition, prefix);
    case "not": return !evaluate(node.expr, resource, definition, prefix);
    case "valuePath": {
      definitionAttribute(definition, prefix + node.path);
      const {urn, attr} = splitPath(node.path);
      let base = resource;
      if (urn && urn.toLowerCase() !== definition.id.toLowerCase()) base = getCi(resource, urn);
      const v = getCi(base, attr);
      const elements = Array.isArray(v) ? v : v === undefined ? [] : [v];
      const scope = (urn ? urn + ":" : "") + attr + ".";
      return elements.some((el) => evaluate(node.filter, el, definition, scope) &&
          (!node.then || evaluate(node.then, el, definition, scope)));
    }
    default: {
      const full = prefix + node.path;
      const attribute = definitionAttribute(definition, full);
      const caseExact = !!attribute?.config?.caseExact;
      const values = valuesOf(resource, node.path, definition.id);
      if (node.op === "pr") return values.some((x) => x !== null && x !== "" && !(Array.isArray(x) && !x.length));
      if (node.op === "ne" && !values.length) return node.value !== null;
      return values.some((x) => compare(node.op, x, node.value, caseExact));
    }
  }
}

function applyFilter(list, filterTree, definition) {
  if (!filterTree) return list;
  return list.filter((r) => evaluate(filterTree, r, definition));
}

// ---- resources -----------------------------------------------------------------------------------

function conflict(message) {
  return new SCIMMY.Types.Error(409, "uniqueness", message);
}

function userIngress(resource, instance) {
  const data = JSON.parse(JSON.stringify(instance));
  delete data.schemas;
  delete data.meta;
  delete data.groups;
  delete data.id;
  const lower = String(data.userName ?? "").toLowerCase();
  for (const u of users.values())
    if (u.id !== resource.id && u.userName.toLowerCase() === lower)
      throw conflict(`userName '${data.userName}' is already taken by user ${u.id}`);
  if (resource.id) {
    const existing = users.get(resource.id);
    if (!existing) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    const updated = {id: existing.id, ...data, meta: existing.meta};
    if (canonical(updated) !== canonical(existing)) touch(updated);
    users.set(existing.id, updated);
    memberIndexDirty = true;
    return userOut(updated);
  }
  const created = {id: crypto.randomUUID(), active: true, ...data, meta: newMeta("User")};
  users.set(created.id, created);
  return userOut(created);
}

function groupIngress(resource, instance) {
  const data = JSON.parse(JSON.stringify(instance));
  delete data.schemas;
  delete data.meta;
  delete data.id;
  const seen = new Set();
  const members = [];
  for (const m of data.members ?? []) {
    if (seen.has(m.value)) continue;
    seen.add(m.value);
    const user = users.get(m.value);
    const group = groups.get(m.value);
    if (!user && !group)
      throw new SCIMMY.Types.Error(400, "invalidValue", `member value '${m.value}' is not the id of a User or Group`);
    members.push({value: m.value, display: user ? userDisplay(user) : group.displayName,
                  type: user ? "User" : "Group"});
  }
  data.members = members;
  if (resource.id) {
    const existing = groups.get(resource.id);
    if (!existing) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    const updated = {id: existing.id, ...data, meta: existing.meta};
    if (canonical(updated) !== canonical(existing)) touch(updated);
    groups.set(existing.id, updated);
    memberIndexDirty = true;
    return groupOut(updated);
  }
  const created = {id: crypto.randomUUID(), ...data, meta: newMeta("Group")};
  groups.set(created.id, created);
  memberIndexDirty = true;
  return groupOut(created);
}

function egress(store, out, definition) {
  return (resource, ctx) => {
    if (resource.id) {
      const record = store.get(resource.id);
      if (!record) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
      return out(record);
    }
    return applyFilter([...store.values()].map(out), ctx?.filter, definition);
  };
}

function degress(store) {
  return (resource) => {
    if (!store.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
    for (const g of groups.values()) {
      const before = g.members?.length ?? 0;
      g.members = (g.members ?? []).filter((m) => m.value !== resource.id);
      if (g.members.length !== before) touch(g);
    }
    memberIndexDirty = true;
  };
}

// ---- the server ----------------------------------------------------------------------------------

function decodeQuery(query) {
  try {
    return decodeURIComponent(query.replace(/\+/g, " "));
  } catch {
    return query;
  }
}

function scimError(res, status, detail, scimType, extraHeaders = {}) {
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  res.status(status).type("application/scim+json").send(JSON.stringify({
    schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? {scimType} : {}), detail}));
}

function main() {
  const opts = parseArgs(process.argv);
  stateFile = opts.stateFile;
  if (stateFile && fs.existsSync(stateFile)) {
    loadData(JSON.parse(fs.readFileSync(stateFile, "utf8")));
  } else if (opts.seed) {
    loadData(JSON.parse(fs.readFileSync(opts.seed, "utf8")));
    saveState();
  }
  let faults = opts.faults;
  const requests = [];
  const issuedTokens = new Set();

  SCIMMY.Resources.declare(SCIMMY.Resources.User, {
    ingress: userIngress,
    egress: egress(users, userOut, SCIMMY.Resources.User.schema.definition),
    degress: degress(users),
    extensions: [{schema: SCIMMY.Schemas.EnterpriseUser, required: false}],
  });
  SCIMMY.Resources.declare(SCIMMY.Resources.Group, {
    ingress: groupIngress,
    egress: egress(groups, groupOut, SCIMMY.Resources.Group.schema.definition),
    degress: degress(groups),
  });

  const app = express();
  app.set("etag", false);  // versions come from the store, not from a hash of the body
  app.set("query parser", "simple");

  // Test control endpoints.
  app.get("/_control/requests", (req, res) => res.json(requests));
  app.delete("/_control/requests", (req, res) => { requests.length = 0; res.status(204).end(); });
  app.put("/_control/faults", express.json(), (req, res) => {
    faults = (Array.isArray(req.body) ? req.body : []).map(validateFault);
    res.status(204).end();
  });
  app.get("/_control/state", (req, res) => res.json({users: [...users.values()], groups: [...groups.values()]}));

  // OAuth 2.0 client credentials (RFC 6749 4.4) for connectors configured with auth: oauth2.
  app.post("/oauth/token", express.urlencoded({extended: false}), (req, res) => {
    let id = req.body.client_id;
    let secret = req.body.client_secret;
    const basic = /^Basic (.+)$/i.exec(req.header("Authorization") ?? "");
    if (basic) {
      const decoded = Buffer.from(basic[1], "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "));
    }
    if (req.body.grant_type !== "client_credentials")
      return res.status(400).json({error: "unsupported_grant_type"});
    if (!opts.clients.some((c) => c.id === id && c.secret === secret))
      return res.status(401).json({error: "invalid_client", error_description: "unknown client or wrong secret"});
    const token = crypto.randomBytes(24).toString("hex");
    issuedTokens.add(token);
    res.json({access_token: token, token_type: "Bearer", expires_in: 3600});
  });

  // Request log, faults, filter and paging preparation, versioning: all before scimmy-routers.
  app.use(BASE, express.json({type: ["application/scim+json", "application/json"], limit: opts.bulkMaxPayload}));
  app.use(BASE, (req, res, next) => {
    const entry = {method: req.method, path: req.path, query: req.originalUrl.split("?")[1] ?? "",
                   headers: {authorization: req.header("Authorization") ? "present" : undefined,
                             "if-match": req.header("If-Match"), "content-type": req.header("Content-Type"),
                             accept: req.header("Accept")},
                   body: req.body, status: 0};
    requests.push(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
      if (["POST", "PUT", "PATCH", "DELETE"].includes(req.method) && res.statusCode < 300) saveState();
    });
    next();
  });
  app.use(BASE, (req, res, next) => {
    const query = req.originalUrl.split("?")[1] ?? "";
    for (const f of faults) {
      if (f.method && f.method.toUpperCase() !== req.method) continue;
      if (!f.path.test(req.path)) continue;
      if (f.query && !f.query.test(decodeQuery(query))) continue;
      f.seen += 1;
      if (f.seen < f.nth || (f.times > 0 && f.seen >= f.nth + f.times)) continue;
      if (f.bumpVersion) {
        const [, type, id] = req.path.split("/");
        const record = (type === "Groups" ? groups : users).get(decodeURIComponent(id ?? ""));
        if (record) touch(record);
        continue;
      }
      if (f.status === undefined) {
        if (f.delayMs > 0) return void setTimeout(next, f.delayMs);
        continue;
      }
      const headers = f.retryAfter !== undefined ? {"Retry-After": String(f.retryAfter)} : {};
      return scimError(res, f.status, f.detail ?? `injected fault ${f.status}`, f.scimType, headers);
    }
    next();
  });
  app.use(BASE, (req, res, next) => {
    // Users and Groups lists: our own filter evaluation, and count capped by filter.maxResults.
    if (req.method === "GET" && /^\/(Users|Groups)\/?$/.test(req.path)) {
      if (typeof req.query.filter === "string") {
        try {
          req.scimFilter = parseFilter(req.query.filter);
        } catch (ex) {
          return scimError(res, ex.status ?? 400, ex.message, ex.scimType ?? "invalidFilter");
        }
        delete req.query.filter;
      }
      const count = req.query.count === undefined ? opts.maxResults : Number(req.query.count);
      if (!Number.isInteger(count) || count < 0)
        return scimError(res, 400, `count must be a non-negative integer, got '${req.query.count}'`, "invalidValue");
      req.query.count = Math.min(count, opts.maxResults);
    }
    next();
  });
  app.use(BASE, (req, res, next) => {
    const m = /^\/(Users|Groups)\/([^/]+)$/.exec(req.path);
    if (!opts.etag || !m) return next();
    const store = m[1] === "Groups" ? groups : users;
    const id = decodeURIComponent(m[2]);
    const ifMatch = req.header("If-Match");
    if (ifMatch && ifMatch !== "*" && ["PUT", "PATCH", "DELETE"].includes(req.method)) {
      const record = store.get(id);
      if (!record) return scimError(res, 404, `Resource ${id} not found`);
      const tags = ifMatch.split(",").map((t) => t.trim());
      if (!tags.includes(versionTag(record.meta)))
        return scimError(res, 412, `If-Match ${ifMatch} does not match the current version ${versionTag(record.meta)} of ${m[1]}/${id}`);
    }
    const send = res.send.bind(res);
    res.send = (body) => {
      const record = store.get(id);
      if (record && res.statusCode < 300) res.setHeader("ETag", versionTag(record.meta));
      return send(body);
    };
    next();
  });

  const routers = new SCIMMYRouters({
    type: "bearer",
    handler: (req) => {
      const auth = req.header("Authorization") ?? "";
      const m = /^Bearer (.+)$/i.exec(auth);
      if (opts.token || opts.clients.length) {
        if (!m) throw new Error("no Authorization header");
        if (m[1] !== opts.token && !issuedTokens.has(m[1])) throw new Error("token not accepted");
      }
      return "certgate";
    },
    context: (req) => ({filter: req.scimFilter}),
  });
  // scimmy-routers turns patch, filter, sort and bulk on; set what this peer really offers.
  SCIMMY.Config.set({
    patch: true,
    sort: true,
    filter: {supported: true, maxResults: opts.maxResults},
    etag: opts.etag,
    bulk: opts.bulk ? {supported: true, maxOperations: opts.bulkMaxOperations, maxPayloadSize: opts.bulkMaxPayload}
                    : false,
  });
  app.use(BASE, routers);

  const server = app.listen(opts.port, "127.0.0.1", () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  const stop = () => process.exit(0);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (opts.watchStdin) {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
  }
}

try {
  main();
} catch (ex) {
  process.stderr.write(`scim peer: ${ex.message}\n`);
  process.exit(2);
}
