// Threadline chat loader: <script async src="https://help.example/widget/v1/loader.js" data-inbox="…">
// Tiny and inert until the visitor acts: it draws one button; the chat UI (an iframe on our
// origin) loads on the first click. It stores nothing, uses no eval and no inline <style>
// (CSSOM only, so a strict host CSP needs no 'unsafe-inline'), and every postMessage names
// its target origin and checks the sender's.
(() => {
  const script = document.currentScript;
  if (!script || !script.dataset.inbox || window.__threadlineLoaded) return;
  window.__threadlineLoaded = true;
  let base;
  try {
    base = new URL(script.src).origin;
  } catch {
    return;
  }
  const inbox = script.dataset.inbox;
  const label = script.dataset.label || "Chat with us";
  const color = /^#[0-9a-fA-F]{3,6}$/.test(script.dataset.color || "") ? script.dataset.color : "#0b5fff";
  let frame = null;
  let open = false;
  let identity = null;

  const css = (el, rules) => Object.assign(el.style, rules);
  const host = document.createElement("div");
  host.setAttribute("data-threadline", "");
  const root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.setAttribute("aria-haspopup", "dialog");
  button.setAttribute("aria-expanded", "false");
  css(button, {
    position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000", padding: "12px 18px",
    border: "0", borderRadius: "24px", background: color, color: "#fff", font: "600 15px system-ui, sans-serif",
    cursor: "pointer", boxShadow: "0 4px 14px rgba(0,0,0,.25)",
  });
  root.appendChild(button);

  const send = (msg) => frame && frame.contentWindow && frame.contentWindow.postMessage(msg, base);

  function createFrame() {
    frame = document.createElement("iframe");
    const src = new URL("/widget/v1/frame", base);
    src.searchParams.set("inbox", inbox);
    src.searchParams.set("host", location.origin);
    frame.src = src.href;
    frame.title = label;
    frame.setAttribute("allow", "clipboard-write");
    css(frame, {
      position: "fixed", right: "20px", bottom: "80px", width: "min(380px, calc(100vw - 40px))",
      height: "min(560px, calc(100vh - 110px))", border: "0", borderRadius: "12px", zIndex: "2147483000",
      boxShadow: "0 8px 30px rgba(0,0,0,.3)", background: "#fff", display: "none",
    });
    root.appendChild(frame);
  }

  function setOpen(value) {
    open = value;
    if (!frame) createFrame();
    frame.style.display = open ? "block" : "none";
    button.setAttribute("aria-expanded", String(open));
    if (open) send({ type: "tl:open" });
    else button.focus();
  }

  button.addEventListener("click", () => setOpen(!open));

  window.addEventListener("message", (event) => {
    if (!frame || event.origin !== base || event.source !== frame.contentWindow) return;
    const data = event.data || {};
    if (data.type === "tl:ready") {
      if (identity) send({ type: "tl:identify", identity });
      if (open) send({ type: "tl:open" });
    } else if (data.type === "tl:close") {
      setOpen(false);
    } else if (data.type === "tl:unread" && !open) {
      button.textContent = data.count > 0 ? `${label} (${Number(data.count)})` : label;
    }
  });

  // The host page's API: Threadline.identify({userId, userHash, name, email}) with userHash
  // computed on the site's server (HMAC-SHA256 of userId), or identify({userJwt}) with a
  // short-lived HS256 JWT from it; never put the secret in the page.
  window.Threadline = {
    open: () => setOpen(true),
    close: () => setOpen(false),
    identify: (who) => {
      identity = who && typeof who === "object" ? { ...who } : null;
      if (identity) send({ type: "tl:identify", identity });
    },
  };

  const mount = () => document.body.appendChild(host);
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
