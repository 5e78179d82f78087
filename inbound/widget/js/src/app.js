// The chat UI inside our iframe. Text is only ever set with textContent (never HTML).
// Postgres is the truth: the socket only says "something new"; the page asks for history
// after the last seq it has, on every (re)connect and every hint, so nothing is lost offline.
const params = new URLSearchParams(location.search);
const inbox = params.get("inbox") || "";
const hostOrigin = params.get("host") || "";
const API = "/widget/v1";
const STORE = `threadline:${inbox}`;

const $ = (id) => document.getElementById(id);
const list = $("messages");
const form = $("composer");
const attach = $("attach");
const picker = $("file");
const input = $("text");
const status = $("status");

let token = null;
let conversation = null;
let lastSeq = 0;
let identity = null;
let socket = null;
let retry = 0;
let pollTimer = null;
const pending = new Map(); // client id -> {text, attachments (upload refs)}, until the server has it
const MAX_UPLOAD = 10 * 1024 * 1024; // the server's limit too (413 beyond)
const FILE_LINK = /^\/widget\/v1\/files\/[A-Za-z0-9_.-]+$/; // only our own download links become hrefs
const seen = new Set();

const embedded = window.parent !== window && /^https?:\/\/[^/]+$/.test(hostOrigin);

function toParent(msg) {
  if (embedded) window.parent.postMessage(msg, hostOrigin); // never "*"
}

function say(text, kind = "info") {
  status.textContent = text || "";
  status.dataset.kind = kind;
}

function files(m) {
  const ul = document.createElement("ul");
  ul.className = "files";
  for (const [i, a] of (m.attachments || []).entries()) {
    const item = document.createElement("li");
    const name = String(a.filename || "file");
    if (typeof a.url === "string" && FILE_LINK.test(a.url)) {
      const link = document.createElement("a");
      link.href = a.url;
      link.download = name;
      link.textContent = name;
      link.setAttribute("aria-label", `Download ${name}`);
      link.dataset.expires = String(a.expires_at || 0);
      link.addEventListener("click", (event) => refreshLink(event, m.seq, i));
      item.appendChild(link);
    } else {
      item.textContent = name; // still uploading, or stored before download links
    }
    ul.appendChild(item);
  }
  return ul;
}

// A link handed out over an hour ago has expired: fetch this message again for a fresh one.
async function refreshLink(event, seq, index) {
  const link = event.currentTarget;
  if (Number(link.dataset.expires) - 30 > Date.now() / 1000 || !seq) return;
  event.preventDefault();
  try {
    const page = await call("GET", `/messages?after=${seq - 1}`);
    const fresh = page.messages[0] && page.messages[0].attachments[index];
    if (fresh && FILE_LINK.test(fresh.url || "")) {
      link.href = fresh.url;
      link.dataset.expires = String(fresh.expires_at || 0);
      link.click();
    }
  } catch (err) {
    say(err.message, "error");
  }
}

function unrender(key) {
  seen.delete(key);
  const el = list.querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (el) el.remove();
}

function render(m) {
  const key = m.client_message_id || `s${m.seq}`;
  if (seen.has(key)) {
    const el = list.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (el && el.classList.contains("pending") && !m.pending) {
      el.classList.remove("pending");
      const old = el.querySelector("ul.files");
      if (old) old.replaceWith(files(m)); // now with download links
    }
    return;
  }
  seen.add(key);
  const li = document.createElement("li");
  li.className = m.author === "agent" ? "agent" : "visitor";
  li.dataset.key = key;
  if (m.pending) li.classList.add("pending");
  if (m.author === "agent" && m.author_name) {
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.author_name;
    li.appendChild(who);
  }
  if (m.body_text || !(m.attachments || []).length) {
    const body = document.createElement("p");
    body.textContent = m.body_text;
    li.appendChild(body);
  }
  if ((m.attachments || []).length) li.appendChild(files(m));
  list.appendChild(li);
  list.scrollTop = list.scrollHeight;
}

async function call(method, path, body) {
  const headers = { "X-Threadline-Embed-Origin": hostOrigin };
  if (token) headers["X-Threadline-Visitor"] = token;
  const form = body instanceof FormData; // multipart: the browser sets the type and boundary
  if (body && !form) headers["Content-Type"] = "application/json";
  const payload = body && !form ? JSON.stringify(body) : body;
  const res = await fetch(API + path, { method, headers, body: payload });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new Error((data && (data.error || data.detail)) || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "null");
  } catch {
    return null;
  }
}

function save() {
  try {
    localStorage.setItem(STORE, JSON.stringify({ token }));
  } catch {
    /* storage blocked (third-party iframe rules): the chat still works for this page view */
  }
}

async function start() {
  const body = { inbox_id: inbox };
  if (identity) {
    if (identity.userId) body.user_id = String(identity.userId);
    if (identity.userHash) body.user_hash = String(identity.userHash);
    if (identity.userJwt) body.user_jwt = String(identity.userJwt); // short-lived HS256 JWT from the site's server
    if (identity.name) body.name = String(identity.name);
    if (identity.email) body.email = String(identity.email);
  }
  const data = await call("POST", "/conversations", body);
  token = data.token;
  conversation = data.conversation_id;
  document.documentElement.style.setProperty("--accent", data.color);
  $("title").textContent = data.title;
  save(); // only after the visitor acted: the frame exists because they opened the chat
  return data;
}

async function catchUp() {
  if (!token) return;
  for (;;) {
    const page = await call("GET", `/messages?after=${lastSeq}`);
    for (const m of page.messages) {
      render(m);
      lastSeq = Math.max(lastSeq, m.seq);
    }
    if (page.messages.length < 100) break;
  }
}

function connect() {
  if (!token || socket) return;
  const url = new URL(`${API}/socket`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("inbox", inbox);
  url.searchParams.set("embed", hostOrigin);
  const ws = new WebSocket(url.href);
  socket = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token })); // the token never goes in the URL
  ws.onmessage = (event) => {
    let msg = {};
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === "ready") {
      retry = 0;
      stopPolling();
    }
    if ((msg.type === "ready" || msg.type === "message") && !(msg.seq && msg.seq <= lastSeq)) {
      catchUp().catch(() => {});
    }
    if (msg.type === "status") {
      if (msg.status === "resolved" || msg.status === "closed") say("This conversation was marked as solved. Write again any time.");
      else if (msg.status === "open") say("");
    }
  };
  ws.onclose = (event) => {
    socket = null;
    if (event.code === 4401) {
      token = null; // revoked or expired: start afresh on the next send
      return;
    }
    startPolling();
    retry = Math.min(retry + 1, 6);
    setTimeout(connect, 500 * 2 ** retry * (0.5 + Math.random()));
  };
}

function startPolling() {
  if (!pollTimer) pollTimer = setInterval(() => catchUp().catch(() => {}), 15000);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

async function flush() {
  for (const [id, item] of pending) {
    try {
      const m = await call("POST", "/messages", { client_message_id: id, ...item });
      pending.delete(id);
      render(m);
      say("");
    } catch (err) {
      if (err.status === 401) {
        token = null;
        await start();
        return flush();
      }
      if (err.status === 429) say(err.message || "You are sending messages too fast. Please wait a moment.", "error");
      else if (err.status && err.status < 500) {
        pending.delete(id); // refused for good (too long...): say why, do not retry forever
        say(err.message, "error");
      } else say("Not sent yet, retrying…", "error");
      return;
    }
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  const id = crypto.randomUUID();
  pending.set(id, { text, attachments: [] });
  render({ client_message_id: id, author: "visitor", body_text: text, pending: true });
  input.value = "";
  try {
    if (!token) {
      await start();
      connect();
    }
    await flush();
  } catch (err) {
    say(err.status === 403 ? err.message || "This chat is not available on this site." : "Not sent yet, retrying…",
      "error");
  }
});

async function ensureStarted() {
  if (!token) {
    await start();
    connect();
  }
}

// One file per pick: uploaded first (type sniffed by the server), then sent as its own message.
async function upload(file) {
  if (file.size > MAX_UPLOAD) {
    say(`That file is too large: the limit is ${MAX_UPLOAD / 1024 / 1024} MiB.`, "error");
    return;
  }
  const id = crypto.randomUUID();
  render({ client_message_id: id, author: "visitor", body_text: "", attachments: [{ filename: file.name }], pending: true });
  say(`Uploading ${file.name}…`);
  const data = new FormData();
  data.append("file", file, file.name);
  try {
    await ensureStarted();
    let up;
    try {
      up = await call("POST", "/attachments", data);
    } catch (err) {
      if (err.status !== 401) throw err;
      token = null; // revoked: start again and retry once
      await ensureStarted();
      up = await call("POST", "/attachments", data);
    }
    pending.set(id, { text: "", attachments: [up.ref] });
    say("");
    await flush();
  } catch (err) {
    unrender(id);
    say(err.status ? err.message : "The file was not sent: check your connection and try again.", "error");
  }
}

attach.addEventListener("click", () => picker.click());
// frame.html ships the button disabled: before this line a click would do nothing.
attach.disabled = false;
picker.addEventListener("change", () => {
  const file = picker.files && picker.files[0];
  picker.value = "";
  if (file) upload(file).finally(() => attach.focus());
});

setInterval(() => {
  if (pending.size) flush().catch(() => {});
}, 5000);

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

$("close").addEventListener("click", () => toParent({ type: "tl:close" }));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") toParent({ type: "tl:close" });
});

window.addEventListener("message", (event) => {
  if (!embedded || event.origin !== hostOrigin || event.source !== window.parent) return;
  const data = event.data || {};
  if (data.type === "tl:open") input.focus();
  if (data.type === "tl:identify" && data.identity && typeof data.identity === "object") identity = data.identity;
});

window.addEventListener("online", () => {
  catchUp().catch(() => {});
  flush().catch(() => {});
});

async function boot() {
  if (!embedded) {
    say("Open this chat from the website it belongs to.", "error");
    form.hidden = true;
    return;
  }
  toParent({ type: "tl:ready" });
  const saved = load();
  if (saved && saved.token) {
    token = saved.token;
    try {
      await start(); // resumes (and rotates) the token; an expired one starts afresh
      await catchUp();
      connect();
    } catch {
      token = null;
    }
  }
}

boot();
