// fixgw dashboard: reads GET /events (server-sent events) with the admin token in the
// Authorization header, and shows what it says. Values are set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("fixgw-token") || "";
let reader = null;
let last = null;
let pending = null;

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function pill(el, text, cls) {
  el.textContent = text;
  el.className = "pill " + cls;
}

function rows(id, items, fill) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    fill(tr, item);
    body.appendChild(tr);
  }
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  return seconds < 1 ? "now" : seconds.toFixed(1) + " s ago";
}

function render(s) {
  last = s;
  $("updated").textContent = s.time;
  const venues = Object.entries(s.venues);
  const down = venues.filter(([, v]) => !v.up).map(([n]) => n);
  const killed = Object.keys(s.kill_switch);
  if (!s.store.up) pill($("overall"), "store down", "bad");
  else if (venues.length && down.length === venues.length) pill($("overall"), "all venues down", "bad");
  else if (down.length) pill($("overall"), "degraded: " + down.join(", "), "warn");
  else pill($("overall"), "ok", "ok");
  pill($("store"), s.store.up ? "store up" : "store down: " + (s.store.why || ""),
       s.store.up ? "ok" : "bad");

  rows("sessions", s.sessions, (tr, x) => {
    cell(tr, x.session);
    const state = !x.enabled ? "disabled" : x.logged_on ? "logged on" : x.connected ? "connecting" : "logged off";
    const td = cell(tr, "");
    const p = document.createElement("span");
    pill(p, state, x.logged_on ? "ok" : x.enabled ? "warn" : "bad");
    td.appendChild(p);
    cell(tr, x.peer);
    cell(tr, x.next_sender_seq, "num");
    cell(tr, x.next_target_seq, "num");
    cell(tr, x.last_logon);
    cell(tr, x.messages_in, "num");
    cell(tr, x.messages_out, "num");
    cell(tr, x.rejects, "num");
    cell(tr, x.open_orders, "num");  // (all of them: the list shows the last 200)
  });

  rows("venues", venues, (tr, [name, v]) => {
    cell(tr, name);
    const td = cell(tr, "");
    const p = document.createElement("span");
    pill(p, v.up ? "up" : "down", v.up ? "ok" : "bad");
    td.appendChild(p);
    cell(tr, v.detail);
    cell(tr, v.stream === null ? "-" : (v.stream.connected ? "connected" : "down") +
             (v.stream.reconnects ? " (" + v.stream.reconnects + " reconnects)" : ""));
    cell(tr, v.stream === null ? "-" : ago(v.stream.last_message_age_s));
    cell(tr, v.rest === null ? "-" : (v.rest.reachable === false ? "failing" : "ok") +
             " " + v.rest.requests + " req");
    const limits = cell(tr, "", "limits");
    const entries = Object.entries(v.rate_limits);
    if (!entries.length) limits.textContent = "-";
    for (const [w, u] of entries) {
      const line = document.createElement("div");
      const bar = document.createElement("span");
      bar.className = "bar";
      const fillEl = document.createElement("span");
      fillEl.style.width = Math.min(100, Math.round((u.usage || 0) * 100)) + "%";
      bar.appendChild(fillEl);
      const label = document.createElement("span");
      label.textContent = w + " " + u.used + "/" + u.limit;
      line.append(bar, label);
      limits.appendChild(line);
    }
  });

  $("open-count").textContent = "(" + s.open_orders + ")";
  rows("orders", s.orders, (tr, o) => {
    cell(tr, o.order_id);
    cell(tr, o.session.split("->").pop());
    cell(tr, o.cl_ord_id);
    cell(tr, o.venue);
    cell(tr, o.symbol);
    cell(tr, o.side);
    cell(tr, o.quantity, "num");
    cell(tr, o.price, "num");
    cell(tr, o.filled, "num");
    cell(tr, o.state);
  });
  rows("fills", s.fills, (tr, f) => {
    cell(tr, (f.time || "").replace("T", " ").replace("Z", ""));
    cell(tr, f.order_id);
    cell(tr, f.venue);
    cell(tr, f.symbol);
    cell(tr, f.side);
    cell(tr, f.quantity, "num");
    cell(tr, f.price, "num");
  });

  const state = $("kill-state");
  state.replaceChildren();
  if (!killed.length) {
    const p = document.createElement("span");
    pill(p, "released: orders are taken", "ok");
    state.appendChild(p);
  }
  for (const scope of killed) {
    const p = document.createElement("span");
    pill(p, "ENGAGED " + scope + (s.kill_switch[scope] ? ": " + s.kill_switch[scope] : ""), "bad");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Release";
    b.className = "release";
    b.dataset.scope = scope;
    b.addEventListener("click", () => ask(scope, false));
    state.append(p, b);
  }
  const select = $("kill-scope");
  const want = ["*", ...s.sessions.map((x) => x.session)];
  if (select.options.length !== want.length) {
    select.replaceChildren(...want.map((v) => {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v === "*" ? "* (every session)" : v;
      return o;
    }));
  }
}

function ask(scope, engage) {
  const reason = $("kill-reason").value.trim();
  if (engage && !reason) {
    $("kill-result").textContent = "say why: the reason is required";
    return;
  }
  pending = { scope, engaged: engage, reason: reason || "released from the dashboard" };
  $("confirm-text").textContent = engage
    ? "Engage the kill switch of " + scope + "? New orders are refused and every open order of it is cancelled."
    : "Release the kill switch of " + scope + "? Orders are taken again.";
  $("confirm").hidden = false;
}

async function confirmed() {
  const body = pending;
  pending = null;
  $("confirm").hidden = true;
  if (!body) return;
  const resp = await fetch("/kill-switch", {
    method: "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json",
               "X-Operator": "dashboard" },
    body: JSON.stringify(body),
  });
  const answer = await resp.json();
  $("kill-result").textContent = resp.ok
    ? (body.engaged ? "engaged: cancelling " + answer.cancelling + " orders" : "released")
    : "refused: " + answer.error;
}

async function listen() {
  const resp = await fetch("/events", { headers: { "Authorization": "Bearer " + token } });
  if (resp.status === 401) {
    signOut("the token was refused");
    return;
  }
  if (!resp.ok || !resp.body) {
    signOut("the gateway answered " + resp.status);
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = chunk.split("\n").filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6)).join("\n");
      if (data) render(JSON.parse(data));
    }
  }
  pill($("overall"), "disconnected: reload", "bad");
}

function signOut(why) {
  token = "";
  sessionStorage.removeItem("fixgw-token");
  if (reader) reader.cancel();
  reader = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("error").textContent = why || "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("fixgw-token", token);
    $("error").textContent = "";
    listen().catch((e) => signOut(String(e)));
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("kill-engage").addEventListener("click", () => ask($("kill-scope").value, true));
  $("confirm-yes").addEventListener("click", () => confirmed().catch((e) => {
    $("kill-result").textContent = String(e);
  }));
  $("confirm-no").addEventListener("click", () => { pending = null; $("confirm").hidden = true; });
  if (token) listen().catch((e) => signOut(String(e)));
});
