// The WhatsApp simulator page: what the user does goes to the `send` view (which signs it and
// posts it to the real webhook); what the bot sends comes from the `feed` view (which reads
// the fake Graph API). The whole chat is loaded from the database (`conversation`) when the
// page opens or switches user; localStorage only remembers the users and a cache of the chat.
// The feed also carries where the bot is (flow, step, variables) and its log of turns.
// No framework and no build step: plain DOM.
(function () {
  "use strict";

  const SETTINGS = JSON.parse(document.getElementById("simulator-settings").textContent);
  const URLS = window.SIMULATOR_URLS;
  let csrfFallback = document.querySelector('meta[name="csrf-token"]').content;
  const STORE_KEY = "whatsapp-simulator-v1";
  const MAX_ITEMS = 300;
  const POLL_MS = 700;
  // Polling slows down while nothing happens (fewer requests, a quieter server), and is fast
  // again as soon as the user acts or something arrives.
  const IDLE_DELAYS = [[10, POLL_MS], [30, 2000], [Infinity, 5000]];
  const TICK = { sending: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

  const $ = (id) => document.getElementById(id);
  const els = {
    messages: $("messages"), typing: $("typing"), status: $("status-line"),
    composer: $("composer"), text: $("composer-text"), userSelect: $("user-select"),
    userForm: $("user-form"), userNumber: $("user-number"), userName: $("user-name"),
    subtitle: $("chat-subtitle"), timer: $("session-timer"),
    stateFlow: $("state-flow"), stateStep: $("state-step"), stateWaiting: $("state-waiting"),
    stateHandover: $("state-handover"), stateVariables: $("state-variables"), botLog: $("bot-log"),
    preset: $("location-preset"), lat: $("location-lat"), lon: $("location-lon"),
    placeName: $("location-name"), address: $("location-address"),
    sheet: $("list-sheet"), sheetTitle: $("list-sheet-title"), sheetRows: $("list-sheet-rows"),
  };

  // ------------------------------------------------------------------ state

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY));
      if (saved && Array.isArray(saved.users) && saved.users.length) return saved;
    } catch (e) { /* a corrupt store is replaced */ }
    return {
      users: [{ wa_id: SETTINGS.defaultWaId, name: SETTINGS.defaultName }],
      current: SETTINGS.defaultWaId,
      chats: {},
    };
  }

  const state = load();
  function save() {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(state)); } catch (e) { /* quota */ }
  }
  function chat(waId) {
    waId = waId || state.current;
    if (!state.chats[waId]) state.chats[waId] = { items: [], since: 0, clock: null };
    return state.chats[waId];
  }
  function currentUser() {
    return state.users.find((u) => u.wa_id === state.current) || state.users[0];
  }
  function addItem(item) {
    const c = chat();
    c.items.push(item);
    if (c.items.length > MAX_ITEMS) c.items.splice(0, c.items.length - MAX_ITEMS);
  }

  // ------------------------------------------------------------------ rendering

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  // WhatsApp's markup (*bold*, _italic_, ~strike~, ```mono```) on already-escaped text.
  function formatText(text) {
    return escapeHtml(text)
      .replace(/```([\s\S]+?)```/g, "<code>$1</code>")
      .replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s.,!?:;)])/g, "$1<strong>$2</strong>")
      .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s.,!?:;)])/g, "$1<em>$2</em>")
      .replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s.,!?:;)])/g, "$1<del>$2</del>")
      .replace(/\n/g, "<br>");
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "text") node.textContent = value;
      else if (key === "html") node.innerHTML = value; // only ever formatText() output
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value);
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  function clock(epochSeconds) {
    const d = epochSeconds ? new Date(epochSeconds * 1000) : new Date();
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function quoteFor(item) {
    const wamid = item.reply_to || item.context;
    if (!wamid) return null;
    const quoted = chat().items.find((i) => i.wamid === wamid);
    if (!quoted) return null;
    const text = quoted.text || quoted.title || quoted.kind;
    return el("div", { class: "quote", text: String(text).slice(0, 80) });
  }

  function ticks(status, title) {
    if (!status) return null;
    return el("span", { class: "ticks", "data-status": status, title: title || status, text: TICK[status] || "" });
  }

  function mediaPlaceholder(item) {
    const icon = { image: "🖼", video: "🎬", audio: "🎵", document: "📄", sticker: "💟" }[item.media_type] || "📎";
    const label = item.filename || item.media_type;
    const children = [el("div", { text: `${icon} ${label}` })];
    if (item.url) {
      // a file the user sent, stored by the project (conversations:media: staff only, log into admin)
      const inline = item.media_type === "image" || item.media_type === "sticker";
      children.push(el("a", { href: item.url, target: "_blank", text: inline ? null : "open file" },
        inline ? [el("img", { src: item.url, alt: label, style: "max-width: 220px; display: block" })] : []));
    } else if (item.media_status === "failed") {
      children.push(el("small", { text: `not stored: ${item.media_error || "refused"}` }));
    } else if (item.who === "me") {
      children.push(el("small", { text: "downloading…" }));
    } else if (item.link && /^https?:\/\//.test(item.link)) {
      children.push(el("a", { href: item.link, target: "_blank", rel: "noopener noreferrer", text: "open link" }));
    } else if (item.media_id) {
      children.push(el("small", { text: `media id ${item.media_id}` }));
    }
    return el("div", { class: "placeholder", "data-media-type": item.media_type }, children);
  }

  function locationBlock(item) {
    const lines = [item.name, item.address, `${item.latitude}, ${item.longitude}`].filter(Boolean);
    const href = `https://www.openstreetmap.org/?mlat=${encodeURIComponent(item.latitude)}&mlon=${encodeURIComponent(item.longitude)}#map=16/${encodeURIComponent(item.latitude)}/${encodeURIComponent(item.longitude)}`;
    return el("div", {}, [
      el("div", { class: "placeholder", text: "📍 Location" }),
      el("div", { html: formatText(lines.join("\n")) }),
      el("a", { href, target: "_blank", rel: "noopener noreferrer", text: "open map" }),
    ]);
  }

  function bubbleContent(item) {
    const parts = [];
    if (item.header) {
      if (item.header.type === "text") parts.push(el("div", { class: "header", text: item.header.text || "" }));
      else parts.push(mediaPlaceholder({ media_type: item.header.type, link: item.header.link, media_id: item.header.id }));
    }
    switch (item.kind) {
      case "text":
      case "buttons":
      case "list":
        parts.push(el("div", { class: "text", html: formatText(item.text || "") }));
        break;
      case "button_reply":
      case "list_reply":
      case "template_button":
        parts.push(el("div", { class: "text", text: item.title || item.text || "" }));
        if (item.description) parts.push(el("small", { text: item.description }));
        break;
      case "media":
        parts.push(mediaPlaceholder(item));
        if (item.caption) parts.push(el("div", { class: "text", html: formatText(item.caption) }));
        break;
      case "location":
        parts.push(locationBlock(item));
        break;
      case "template":
        parts.push(el("div", { class: "template-tag", text: `template ${item.template_name || "?"} (${item.language || "?"})` }));
        parts.push(el("div", { class: "text", html: formatText((item.params || []).join("\n") || "(no parameters)") }));
        break;
      default:
        parts.push(el("pre", { class: "text", text: JSON.stringify(item.raw || item, null, 1).slice(0, 600) }));
    }
    if (item.footer) parts.push(el("div", { class: "footer", text: item.footer }));
    return parts;
  }

  function actionsFor(item) {
    if (!item.ok && item.who === "bot") return null;
    if (item.kind === "buttons" || (item.kind === "template" && (item.buttons || []).length)) {
      const tapKind = item.kind === "buttons" ? "button_reply" : "template_button";
      return el("div", { class: "actions" }, (item.buttons || []).map((b) => el("button", {
        type: "button", class: "reply-button", "data-id": b.id, text: b.title,
        onclick: () => sendAction({ kind: tapKind, id: b.id, title: b.title, context: item.wamid }),
      })));
    }
    if (item.kind === "list") {
      return el("div", { class: "actions" }, [el("button", {
        type: "button", class: "list-open", text: `☰ ${item.button || "Options"}`,
        onclick: () => openList(item),
      })]);
    }
    return null;
  }

  function renderItem(item) {
    const bubble = el("div", { class: "bubble" }, [quoteFor(item), ...bubbleContent(item)]);
    const meta = el("div", { class: "meta" }, [el("span", { text: clock(item.at) })]);
    const tickTitle = item.webhookError ? `webhook refused a status: ${item.webhookError}` : null;
    meta.appendChild(ticks(item.status, tickTitle) || document.createTextNode(""));
    bubble.appendChild(meta);
    const node = el("div", {
      class: "msg", "data-who": item.who, "data-kind": item.kind,
      "data-wamid": item.wamid || "", "data-seq": item.seq || "",
    }, [bubble, actionsFor(item)]);
    if (item.error) node.appendChild(el("div", { class: "error", text: item.who === "bot" ? `Not delivered: ${item.error}` : item.error }));
    if (item.webhookError) node.appendChild(el("div", { class: "error", text: `Webhook refused a status: ${item.webhookError}` }));
    return node;
  }

  // Keyed rendering: a bubble is rebuilt only when its item changed, so polling does not
  // replace the node a person (or a test) is about to tap.
  const rendered = new Map(); // key -> { json, node }
  function itemKey(item) {
    if (item.who === "bot") return item.message_id ? `msg-${item.message_id}` : `bot-${item.seq}`;
    return item.id || `me-${item.at}`;
  }

  function render() {
    const keep = new Map();
    const nodes = chat().items.map((item) => {
      const key = itemKey(item);
      const json = JSON.stringify(item);
      const previous = rendered.get(key);
      const node = previous && previous.json === json ? previous.node : renderItem(item);
      keep.set(key, { json, node });
      return node;
    });
    rendered.clear();
    keep.forEach((value, key) => rendered.set(key, value));
    const same = nodes.length === els.messages.children.length
      && nodes.every((node, i) => els.messages.children[i] === node);
    if (!same) {
      els.messages.replaceChildren(...nodes);
      els.messages.scrollTop = els.messages.scrollHeight;
    }
  }

  function renderUsers() {
    els.userSelect.replaceChildren(...state.users.map((u) => el("option", {
      value: u.wa_id, text: `${u.name} (+${u.wa_id})`,
    })));
    els.userSelect.value = state.current;
    const user = currentUser();
    els.subtitle.textContent = `you are ${user.name} · +${user.wa_id}`;
    els.userNumber.value = user.wa_id;
    els.userName.value = user.name;
  }

  function showStatus(text) { els.status.textContent = text || ""; }

  // ------------------------------------------------------------------ list picker

  function openList(item) {
    els.sheetTitle.textContent = item.button || "Options";
    const rows = [];
    for (const section of item.sections || []) {
      if (section.title) rows.push(el("h4", { text: section.title }));
      for (const row of section.rows || []) {
        rows.push(el("button", {
          type: "button", class: "list-row", "data-id": row.id,
          onclick: () => {
            closeList();
            sendAction({ kind: "list_reply", id: row.id, title: row.title, description: row.description || null, context: item.wamid });
          },
        }, [el("span", { text: row.title }), row.description ? el("small", { text: row.description }) : null]));
      }
    }
    els.sheetRows.replaceChildren(...rows);
    els.sheet.hidden = false;
  }
  function closeList() { els.sheet.hidden = true; }
  $("list-sheet-close").addEventListener("click", closeList);
  els.sheet.addEventListener("click", (e) => { if (e.target === els.sheet) closeList(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeList(); });

  // ------------------------------------------------------------------ sending

  // The CSRF token is read from the cookie at every POST: logging into the admin in the same
  // browser rotates it, and a token read once at page load was then refused (HTTP 403).
  function csrfToken() {
    const name = SETTINGS.csrfCookieName || "csrftoken";
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return csrfFallback;
  }

  async function refreshCsrf() {
    const response = await fetch(URLS.csrf, { credentials: "same-origin" });
    if (response.ok) csrfFallback = (await response.json()).csrf_token;
  }

  async function postJson(url, body, retried) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (response.status === 403 && !retried) {
      // refused by the CSRF check (nothing was posted): take a fresh token and try once more
      try { await refreshCsrf(); } catch (e) { /* the retry reports the error */ }
      return postJson(url, body, true);
    }
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    return { response, data };
  }

  async function sendAction(action, label) {
    const user = currentUser();
    const waId = user.wa_id;
    const item = {
      id: `me-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, who: "me",
      kind: action.kind === "image" ? "media" : action.kind, media_type: action.kind === "image" ? "image" : undefined,
      caption: action.kind === "image" ? action.text : undefined, text: label || action.text || action.title, title: action.title,
      description: action.description, context: action.context, at: Date.now() / 1000,
      status: "sending", latitude: action.latitude, longitude: action.longitude,
      name: action.name, address: action.address,
    };
    addItem(item);
    render();
    showStatus("");
    try {
      const { response, data } = await postJson(URLS.send, { ...action, wa_id: waId, profile_name: user.name });
      if (response.ok && data) {
        const c = chat(waId);
        const waiting = c.items.some((i) => i.who === "me" && i.wamid && i.status === "sent");
        // a receipt for this message can only come after the fake's last record seen so far
        if (!waiting) c.rsince = Math.max(c.rsince || 0, state.fakeLast || 0);
        item.wamid = data.wamid;
        item.status = "sent";
      } else {
        const error = data && data.error ? `${data.error.field}: ${data.error.message}` : `HTTP ${response.status}`;
        item.status = "failed";
        item.error = error;
        showStatus(`Not sent: ${error}`);
      }
    } catch (e) {
      item.status = "failed";
      item.error = `network error: ${e}`;
      showStatus(item.error);
    }
    save();
    if (waId === state.current) render();
    idlePolls = 0;
    schedulePoll(0);
  }

  els.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = els.text.value;
    if (!text.trim()) return;
    els.text.value = "";
    sendAction({ kind: "text", text });
  });

  function sendLocation() {
    const lat = els.lat.value.trim();
    const lon = els.lon.value.trim();
    sendAction({
      kind: "location", latitude: lat === "" ? null : Number(lat), longitude: lon === "" ? null : Number(lon),
      name: els.placeName.value.trim() || null, address: els.address.value.trim() || null,
    }, "📍 location");
  }
  $("attach-photo").addEventListener("click", () => {
    const caption = els.text.value.trim();
    els.text.value = "";
    sendAction({ kind: "image", text: caption || null }, caption || "📷 photo");
  });
  $("location-send").addEventListener("click", sendLocation);
  $("attach-location").addEventListener("click", sendLocation);

  function applyPreset(index) {
    const p = SETTINGS.locationPresets[index];
    if (!p) return;
    els.lat.value = p.latitude;
    els.lon.value = p.longitude;
    els.placeName.value = p.name || "";
    els.address.value = p.address || "";
  }
  els.preset.replaceChildren(...SETTINGS.locationPresets.map((p, i) => el("option", { value: String(i), text: p.label })));
  els.preset.addEventListener("change", () => applyPreset(Number(els.preset.value)));
  applyPreset(0);

  // ------------------------------------------------------------------ users

  function switchUser(waId) {
    state.current = waId;
    save();
    renderUsers();
    render();
    renderState(null);
    showStatus("");
    loadConversation(waId);
  }
  els.userSelect.addEventListener("change", () => switchUser(els.userSelect.value));
  els.userForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const waId = els.userNumber.value.trim().replace(/^\+/, "");
    const name = els.userName.value.trim() || "Simulator User";
    if (!/^\d{6,15}$/.test(waId)) {
      showStatus("The number must be 6 to 15 digits with the country code, e.g. 263771234567.");
      return;
    }
    const existing = state.users.find((u) => u.wa_id === waId);
    if (existing) existing.name = name;
    else state.users.push({ wa_id: waId, name });
    switchUser(waId);
  });
  $("user-random").addEventListener("click", () => {
    els.userNumber.value = "26377" + String(Math.floor(Math.random() * 1e7)).padStart(7, "0");
    els.userName.value = "";
  });
  $("reset-chat").addEventListener("click", async () => {
    const waId = state.current;
    const { response, data } = await postJson(URLS.reset, { wa_id: waId });
    if (!response.ok || !data) {
      showStatus(data && data.error ? `Not reset: ${data.error.field}: ${data.error.message}` : `Not reset: HTTP ${response.status}`);
      return;
    }
    const c = chat(waId);
    c.items = [];
    c.clock = null;
    if (Number.isInteger(data.fake_last_seq)) { c.since = data.fake_last_seq; c.rsince = data.fake_last_seq; }
    save();
    render();
    renderState(null);
    updateTimer();
    showStatus("");
    idlePolls = 0;
    schedulePoll(0);
  });

  // ------------------------------------------------------------------ history from the server

  // The database has both sides of the chat: it replaces what this page cached, keeping only
  // the user's messages that never reached the server (refused or still being sent).
  async function loadConversation(waId) {
    clearTimeout(pollTimer);
    try {
      const response = await fetch(`${URLS.conversation}?${new URLSearchParams({ wa_id: waId })}`, { credentials: "same-origin" });
      const data = await response.json();
      if (!response.ok) {
        showStatus(data.error ? `${data.error.field}: ${data.error.message}` : `conversation: HTTP ${response.status}`);
      } else {
        const c = chat(waId);
        const onServer = new Set(data.items.filter((i) => i.wamid).map((i) => i.wamid));
        const unsent = c.items.filter((i) => i.who === "me" && !(i.wamid && onServer.has(i.wamid)) && (i.status === "failed" || i.status === "sending"));
        c.items = [...data.items, ...unsent].slice(-MAX_ITEMS);
        if (Number.isInteger(data.fake_last_seq)) {
          c.since = data.fake_last_seq;
          c.rsince = Math.min(c.rsince || 0, data.fake_last_seq);
        }
        setClock(c, data.state);
        save();
        if (waId === state.current) { render(); renderState(data.state); updateTimer(); }
      }
    } catch (e) {
      showStatus(`conversation: ${e}`);
    }
    idlePolls = 0;
    schedulePoll(0);
  }

  // ------------------------------------------------------------------ the bot's state and log

  let shownState = "";
  function renderState(botState) {
    const json = JSON.stringify(botState);
    if (json === shownState) return;
    shownState = json;
    const session = botState && botState.session;
    els.stateFlow.textContent = session ? session.flow : "—";
    els.stateStep.textContent = session ? session.step : "—";
    els.stateWaiting.textContent = session
      ? `${session.awaiting_reply ? "waiting for a reply" : "not waiting"} · retries ${session.retries}`
      : "no session (the next message starts one)";
    els.stateHandover.textContent = botState && botState.handover
      ? "waiting for a human: the bot is quiet" : botState && botState.blocked ? "blocked" : "bot";
    els.stateVariables.textContent = session ? JSON.stringify(session.variables, null, 1) : "{}";
    const turns = (botState && botState.trace) || [];
    els.botLog.replaceChildren(...turns.slice().reverse().map((turn) => el("li", { class: "turn" }, [
      el("div", { class: "turn-head", text: `${clock(turn.at)} · message ${turn.message_id} · ${turn.replies} repl${turn.replies === 1 ? "y" : "ies"}${turn.waiting_at ? ` · now at ${turn.waiting_at}` : " · no session"}${turn.handover ? " · handover" : ""}` }),
      ...(turn.path || []).map((line) => el("div", { class: "turn-path", text: line })),
      el("div", { class: "turn-events", text: (turn.events || []).join(" · ") }),
    ])));
    if (!turns.length) els.botLog.replaceChildren(el("li", { class: "turn empty", text: "No turns recorded yet (FLOW_TRACE on the workers records them)." }));
  }

  // ------------------------------------------------------------------ polling

  let pollTimer = null;
  let polling = false;
  let idlePolls = 0;

  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, delay);
  }

  function applyFeed(waId, data, askedReceipts) {
    const c = chat(waId);
    if (data.reset) {
      // the fake Graph API restarted: its sequence numbers start over; the database still
      // has the whole chat
      c.since = 0;
      c.rsince = 0;
      loadConversation(waId);
      return false;
    }
    const seen = new Set(c.items.filter((i) => i.seq).map((i) => i.seq));
    for (const msg of data.messages) {
      if (seen.has(msg.seq) || msg.kind === "receipt") continue;
      // the same reply may already be drawn from the history (same Message row or wamid)
      const known = c.items.find((i) => i.who === "bot" && (
        (msg.message_id && i.message_id === msg.message_id) || (msg.wamid && i.wamid === msg.wamid)));
      if (known) {
        Object.assign(known, { seq: msg.seq, wamid: msg.wamid || known.wamid, ok: msg.ok, error: msg.error });
        if (!msg.ok) known.status = "failed";
        else if (known.status === "sending") known.status = "sent";
        continue;
      }
      c.items.push({ ...msg, who: "bot", status: msg.ok ? "sent" : "failed" });
      if (waId === state.current) els.typing.textContent = "";
    }
    for (const [wamid, info] of Object.entries(data.receipts || {})) {
      const mine = c.items.find((i) => i.who === "me" && i.wamid === wamid);
      if (mine) mine.status = "read";
      if (info.typing && waId === state.current) showTyping();
    }
    if (askedReceipts) c.rsince = data.next_receipts_since;
    state.fakeLast = data.fake_last_seq;
    if (c.items.length > MAX_ITEMS) c.items.splice(0, c.items.length - MAX_ITEMS);
    c.since = data.next_since;
    setClock(c, data.state);
    for (const [wamid, info] of Object.entries(data.statuses || {})) {
      const item = c.items.find((i) => i.who === "bot" && i.wamid === wamid);
      if (!item) continue;
      if (info.status) item.status = info.status;
      item.webhookError = info.webhook_error || null;
    }
    return data.more;
  }

  let typingTimer = null;
  function showTyping() {
    els.typing.textContent = "typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { els.typing.textContent = ""; }, 25000);
  }

  async function poll() {
    if (polling) return;
    polling = true;
    const waId = state.current;
    const c = chat(waId);
    const track = c.items
      .filter((i) => i.who === "bot" && i.wamid && i.status !== "read" && i.status !== "failed")
      .slice(-150).map((i) => i.wamid);
    const mine = c.items
      .filter((i) => i.who === "me" && i.wamid && i.status === "sent")
      .slice(-50).map((i) => i.wamid);
    const params = new URLSearchParams({ wa_id: waId, since: String(c.since || 0) });
    if (track.length) params.set("track", track.join(","));
    if (mine.length) {
      params.set("mine", mine.join(","));
      params.set("rsince", String(c.rsince || 0));
    }
    idlePolls += 1;
    let again = IDLE_DELAYS.find(([upTo]) => idlePolls <= upTo)[1];
    try {
      const response = await fetch(`${URLS.feed}?${params}`, { credentials: "same-origin" });
      const data = await response.json();
      if (!response.ok) {
        showStatus(data.error ? `${data.error.field}: ${data.error.message}` : `feed: HTTP ${response.status}`);
        again = 3000;
      } else if (waId === state.current) {
        const before = JSON.stringify(c.items);
        const stateBefore = shownState;
        if (applyFeed(waId, data, mine.length > 0)) again = 0;
        renderState(data.state || null);
        const changed = JSON.stringify(c.items) !== before || shownState !== stateBefore;
        if (changed) { idlePolls = 0; again = Math.min(again, POLL_MS); }
        if (JSON.stringify(c.items) !== before) { save(); render(); }
        if (els.status.textContent.startsWith("feed") || els.status.textContent.startsWith("fake_graph")) showStatus("");
      }
    } catch (e) {
      showStatus(`feed: ${e}`);
      again = 3000;
    } finally {
      polling = false;
      schedulePoll(again);
    }
  }

  // ------------------------------------------------------------------ session timer

  // The server's countdown (the state's idle_expires_at): none without a session (its flow
  // ended, or it expired and the notice was sent) and none while a human has the conversation.
  function setClock(c, st) {
    if (!st) return;
    c.clock = { expires_at: st.idle_expires_at, handover: st.handover, skew: st.now - Date.now() / 1000 };
  }

  function updateTimer() {
    const clock = chat().clock;
    if (!clock) { els.timer.textContent = ""; return; }
    if (clock.handover) { els.timer.textContent = "with a human: no idle countdown"; return; }
    if (clock.expires_at === null) { els.timer.textContent = ""; return; }
    const left = Math.floor(clock.expires_at - (Date.now() / 1000 + clock.skew));
    const mmss = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    els.timer.textContent = left > 0
      ? `session expires in ${mmss(left)} if you stay quiet`
      : "idle: the session expires at the next sweep";
  }
  setInterval(updateTimer, 1000);
  const wakeUp = () => { idlePolls = 0; schedulePoll(0); };
  window.addEventListener("focus", wakeUp);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) wakeUp(); });

  renderUsers();
  render();
  renderState(null);
  updateTimer();
  loadConversation(state.current);
})();
