// The inbox conversation page: polls for what is new, loads older pages on scroll up, and
// posts replies, templates, notes and actions. The server renders every bubble (escaped);
// this script only inserts the HTML it gets back.
(function () {
  "use strict";
  const root = document.getElementById("inbox-conversation");
  if (!root) return;

  const POLL_MS = 2000;
  const SESSION_ENDED = "Your admin session ended: reload the page to log in again.";
  const chat = document.getElementById("chat");
  const timeline = document.getElementById("timeline");
  const errorBox = document.getElementById("inbox-error");
  const state = {
    lastId: Number(root.dataset.lastId) || 0,
    oldestId: Number(root.dataset.oldestId) || 0,
    hasOlder: root.dataset.hasOlder === "1",
    version: Number(root.dataset.version) || 0,
    lastNote: Number(root.dataset.lastNote) || 0,
    lastEvent: Number(root.dataset.lastEvent) || 0,
    watched: JSON.parse(document.getElementById("watched-statuses").textContent || "{}"),
    composer: JSON.parse(document.getElementById("composer-state").textContent || "{}"),
    replyTo: "",
    loadingOlder: false,
    polling: false,
  };

  function csrfToken() {
    // the cookie first: it is current even after a login in another tab rotated the token;
    // the page's own token if the cookie is not readable (CSRF_COOKIE_HTTPONLY)
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const field = document.querySelector("#inbox-conversation input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  async function post(url, data) {
    const body = new URLSearchParams();
    Object.entries(data).forEach(([key, value]) => body.append(key, value));
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      body,
    });
    if (response.redirected) { // admin sent the request to its login page
      showError(SESSION_ENDED);
      return null;
    }
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = { ok: false, error: "HTTP " + response.status }; }
    if (!response.ok || !answer.ok) {
      showError(answer.error || "HTTP " + response.status);
      return null;
    }
    showError("");
    return answer;
  }

  function nearBottom() {
    return chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  }

  function scrollToBottom() {
    chat.scrollTop = chat.scrollHeight;
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  function appendHtml(html) {
    if (!html || !html.trim()) return;
    const stick = nearBottom();
    const nodes = fragment(html);
    // a message already on the page (the poll raced an older page) is replaced, not doubled
    nodes.querySelectorAll("[data-msg-id]").forEach((node) => {
      const existing = timeline.querySelector(`[data-msg-id="${node.dataset.msgId}"]`);
      if (existing) existing.remove();
    });
    nodes.querySelectorAll("[data-note-id],[data-event-id]").forEach((node) => {
      const key = node.dataset.noteId ? `[data-note-id="${node.dataset.noteId}"]` : `[data-event-id="${node.dataset.eventId}"]`;
      if (timeline.querySelector(key)) node.remove();
    });
    timeline.appendChild(nodes);
    if (stick) scrollToBottom();
  }

  function replaceMessage(id, html) {
    const existing = timeline.querySelector(`[data-msg-id="${id}"]`);
    if (!existing) return;
    const nodes = fragment(html);
    existing.replaceWith(nodes);
  }

  function watchedParam() {
    return Object.entries(state.watched).map(([id, status]) => `${id}:${status}`).join(",");
  }

  function setSide(html) {
    if (html) document.getElementById("side").innerHTML = html;
  }

  async function poll() {
    if (state.polling) return;
    state.polling = true;
    try {
      const params = new URLSearchParams({
        after: state.lastId, v: state.version, n: state.lastNote, e: state.lastEvent, st: watchedParam(),
      });
      const response = await fetch(`${root.dataset.pollUrl}?${params}`, { credentials: "same-origin" });
      if (response.redirected) { showError(SESSION_ENDED); return; }
      if (!response.ok) return;
      const data = await response.json();
      if (!data.changed) return;
      state.version = data.version;
      appendHtml(data.html);
      if (data.last_id) state.lastId = Math.max(state.lastId, data.last_id);
      if (data.last_note) state.lastNote = Math.max(state.lastNote, data.last_note);
      if (data.last_event) state.lastEvent = Math.max(state.lastEvent, data.last_event);
      (data.statuses || []).forEach((item) => {
        replaceMessage(item.id, item.html);
        if (item.status === "read" || item.status === "failed") delete state.watched[item.id];
        else state.watched[item.id] = item.status;
      });
      (data.replaced || []).forEach((item) => replaceMessage(item.id, item.html));
      Object.assign(state.watched, data.watch || {});
      setSide(data.side_html);
      if (data.composer) applyComposer(data.composer);
    } catch (e) {
      // offline for a moment: the next poll asks again
    } finally {
      state.polling = false;
    }
  }

  async function loadOlder() {
    if (!state.hasOlder || state.loadingOlder || !state.oldestId) return;
    state.loadingOlder = true;
    try {
      const response = await fetch(`${root.dataset.olderUrl}?before=${state.oldestId}`, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      const previousHeight = chat.scrollHeight;
      timeline.insertBefore(fragment(data.html), timeline.firstChild);
      chat.scrollTop += chat.scrollHeight - previousHeight; // keep what the operator was reading in place
      state.hasOlder = data.has_older;
      if (data.oldest_id) state.oldestId = data.oldest_id;
      Object.assign(state.watched, data.watch || {});
      document.getElementById("older-marker").textContent = state.hasOlder
        ? "Scroll up for older messages" : "Start of the conversation";
    } finally {
      state.loadingOlder = false;
    }
  }

  // ------------------------------------------------------------------ composer

  const replyForm = document.getElementById("reply-form");
  const replyText = document.getElementById("reply-text");
  const windowClosed = document.getElementById("window-closed");
  const templateSelect = document.getElementById("template-select");
  const templateVars = document.getElementById("template-vars");
  const cannedMenu = document.getElementById("canned-menu");

  let windowTimer = null;

  function applyComposer(composer) {
    state.composer = composer;
    if (!replyForm) return;
    clearTimeout(windowTimer);
    if (composer.window_left > 0) {
      // the window closes while the page is open: offer the templates then, not after a poll
      windowTimer = setTimeout(() => applyComposer({ ...state.composer, window_left: 0 }),
        Math.min(composer.window_left * 1000, 2 ** 31 - 1));
    }
    const open = composer.window_left > 0;
    replyForm.hidden = !open;
    windowClosed.hidden = open;
    const chosen = templateSelect.value;
    templateSelect.innerHTML = "";
    const placeholder = document.createElement("option");
    placeholder.value = "";
    placeholder.textContent = composer.templates.length ? "Choose a template…" : "No approved templates";
    templateSelect.appendChild(placeholder);
    composer.templates.forEach((template) => {
      const option = document.createElement("option");
      option.value = template.id;
      option.textContent = `${template.name} (${template.language})`;
      templateSelect.appendChild(option);
    });
    if ([...templateSelect.options].some((o) => o.value === chosen)) templateSelect.value = chosen;
    else renderTemplateVars();
  }

  function renderTemplateVars() {
    templateVars.innerHTML = "";
    const template = state.composer.templates.find((t) => String(t.id) === templateSelect.value);
    if (!template) return;
    template.slots.forEach((slot) => {
      const label = document.createElement("label");
      label.className = "template-var";
      label.textContent = slot.label + " ";
      const input = document.createElement("input");
      input.type = "text";
      input.name = "var:" + slot.key;
      input.dataset.slot = slot.key;
      input.placeholder = slot.example || "";
      label.appendChild(input);
      templateVars.appendChild(label);
    });
  }

  if (replyForm) {
    applyComposer(state.composer);
    templateSelect.addEventListener("change", renderTemplateVars);

    const attachInput = document.getElementById("attach-file");

    async function sendAttachment() {
      // the file goes with the text as its caption (images, videos, documents)
      const body = new FormData();
      body.append("file", attachInput.files[0]);
      body.append("caption", replyText.value);
      const button = document.getElementById("reply-send");
      button.disabled = true;
      try {
        const response = await fetch(root.dataset.attachUrl, {
          method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() }, body,
        });
        if (response.redirected) { showError(SESSION_ENDED); return; }
        let answer = {};
        try { answer = await response.json(); } catch (e) { answer = { error: "HTTP " + response.status }; }
        if (!response.ok || !answer.ok) { showError(answer.error || "HTTP " + response.status); return; }
        showError("");
        attachInput.value = "";
        replyText.value = "";
        poll();
      } finally {
        button.disabled = false;
      }
    }

    replyForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (attachInput.files.length) { await sendAttachment(); return; }
      const text = replyText.value;
      if (!text.trim()) return;
      const button = document.getElementById("reply-send");
      button.disabled = true;
      const answer = await post(root.dataset.sendUrl, { text, reply_to: state.replyTo });
      button.disabled = false;
      if (answer) {
        replyText.value = "";
        clearReplyTo();
        poll(); // the new message (id after lastId) is drawn by the poll, with its status
      }
    });

    replyText.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && cannedMenu.hidden) {
        event.preventDefault();
        replyForm.requestSubmit();
      } else if (event.key === "Escape") {
        cannedMenu.hidden = true;
      }
    });

    let cannedTimer = null;
    let cannedSeq = 0;
    replyText.addEventListener("input", () => {
      clearTimeout(cannedTimer);
      const match = replyText.value.match(/(?:^|\s)\/([\w-]*)$/);
      if (!match) { cannedMenu.hidden = true; return; }
      cannedTimer = setTimeout(() => searchCanned(match[1]), 150); // once typing pauses
    });

    async function searchCanned(query) {
      const seq = ++cannedSeq;
      const response = await fetch(`${root.dataset.cannedUrl}?q=${encodeURIComponent(query)}`, { credentials: "same-origin" });
      if (!response.ok || seq !== cannedSeq) return; // a later search superseded this one
      const data = await response.json();
      if (seq !== cannedSeq) return;
      cannedMenu.innerHTML = "";
      data.results.forEach((item) => {
        const option = document.createElement("button");
        option.type = "button";
        option.className = "canned-option";
        option.dataset.shortcut = item.shortcut;
        option.textContent = `/${item.shortcut} — ${item.text.slice(0, 80)}`;
        option.addEventListener("click", () => {
          replyText.value = replyText.value.replace(/\/[\w-]*$/, item.text);
          cannedMenu.hidden = true;
          replyText.focus();
        });
        cannedMenu.appendChild(option);
      });
      cannedMenu.hidden = data.results.length === 0;
    }

    document.getElementById("template-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = { template: templateSelect.value };
      templateVars.querySelectorAll("input").forEach((input) => { data[input.name] = input.value; });
      const answer = await post(root.dataset.templateUrl, data);
      if (answer) {
        templateVars.querySelectorAll("input").forEach((input) => { input.value = ""; });
        poll();
      }
    });

    document.getElementById("note-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = document.getElementById("note-text");
      if (!text.value.trim()) return;
      if (await post(root.dataset.actionUrl, { action: "note", text: text.value })) {
        text.value = "";
        poll();
      }
    });
  }

  function clearReplyTo() {
    state.replyTo = "";
    const bar = document.getElementById("reply-to-bar");
    if (bar) bar.hidden = true;
  }

  // quote a message: double-click its bubble
  timeline.addEventListener("dblclick", (event) => {
    const bubble = event.target.closest(".msg");
    if (!bubble || !bubble.dataset.wamid || !replyForm) return;
    state.replyTo = bubble.dataset.wamid;
    document.getElementById("reply-to-text").textContent = (bubble.querySelector(".text") || bubble).textContent.trim().slice(0, 80);
    document.getElementById("reply-to-bar").hidden = false;
    replyText.focus();
  });
  const cancel = document.getElementById("reply-to-cancel");
  if (cancel) cancel.addEventListener("click", clearReplyTo);

  // ------------------------------------------------------------------ actions (side panel)

  const side = document.getElementById("side");
  side.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    event.preventDefault();
    const data = { action: button.dataset.action };
    if (button.dataset.label) data.label = button.dataset.label;
    if (await post(root.dataset.actionUrl, data)) poll();
  });
  side.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    const data = { action: form.dataset.action };
    new FormData(form).forEach((value, key) => { data[key] = value; });
    if (await post(root.dataset.actionUrl, data)) poll();
  });

  chat.addEventListener("scroll", () => { if (chat.scrollTop < 60) loadOlder(); });
  scrollToBottom();
  showError("");
  setInterval(poll, POLL_MS);
})();
