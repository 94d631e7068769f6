// Live follow-up of a conversation: every 2 s ask the API for entries after the last one shown and append them.
// Served by the console itself (CSP script-src 'self'); builds nodes with textContent only, never HTML.
(function () {
  "use strict";
  var list = document.getElementById("transcript");
  if (!list) { return; }
  var api = list.getAttribute("data-api");
  var after = list.getAttribute("data-after");
  var status = document.getElementById("live-status");
  var INTERVAL = 2000;
  var busy = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function localTime(iso) {
    // The API gives ISO times with the estate's offset; show its wall time as the server does (YYYY-MM-DD HH:MM).
    return iso ? iso.replace("T", " ").slice(0, 16) : "";
  }

  function percent(value) {
    return value === null || value === undefined ? "" : Math.round(value * 100) + "%";
  }

  function render(entry) {
    var item;
    if (entry.kind === "message") {
      item = el("li", "entry message from-" + entry.speaker);
      var meta = el("div", "meta");
      var who = entry.speaker === "owner" ? "业主" : entry.speaker === "staff" ? (entry.staff_name || entry.staff) + "（员工）" : "机器人";
      meta.appendChild(el("span", "speaker", who));
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(el("time", "", localTime(entry.at)));
      item.appendChild(meta);
      item.appendChild(el("div", "text", entry.text || ""));
      if (entry.buttons && entry.buttons.length) {
        var buttons = el("div", "buttons");
        entry.buttons.forEach(function (title) { buttons.appendChild(el("span", "chip", title)); });
        item.appendChild(buttons);
      }
      if (entry.speaker === "owner") {
        var nlu = el("div", "nlu", "意图 ");
        nlu.appendChild(el("code", "intent", entry.intent || "—"));
        nlu.appendChild(document.createTextNode(" "));
        nlu.appendChild(el("span", "confidence", percent(entry.confidence)));
        (entry.entities || []).forEach(function (entity) {
          var span = el("span", "entity");
          span.appendChild(el("code", "", entity.name));
          span.appendChild(document.createTextNode("=" + entity.value));
          nlu.appendChild(span);
        });
        item.appendChild(nlu);
      } else if (entry.speaker === "bot" && entry.action) {
        var action = el("div", "nlu", "动作 ");
        action.appendChild(el("code", "", entry.action));
        item.appendChild(action);
      }
    } else if (entry.kind === "action") {
      item = el("li", "entry action");
      item.appendChild(el("time", "", localTime(entry.at)));
      item.appendChild(document.createTextNode(" 机器人动作 "));
      item.appendChild(el("code", "", entry.action));
    } else {
      var ended = { signed_out: "网页聊天已结束（业主点了退出）", idle: "网页聊天已结束（长时间未操作，自动过期）", max_age: "网页聊天已结束（超过最长时限，自动过期）" };
      var label = entry.kind === "session_ended" ? (ended[entry.reason] || "网页聊天已结束")
        : ({ session_started: "新的会话开始", paused: "机器人暂停（人工接管）", resumed: "机器人恢复" }[entry.kind] || entry.kind);
      item = el("li", "entry marker");
      item.appendChild(el("time", "", localTime(entry.at)));
      item.appendChild(document.createTextNode(" " + label));
    }
    item.setAttribute("data-event-id", entry.event_id);
    return item;
  }

  function poll() {
    if (busy) { return; }
    busy = true;
    var url = api + (after ? "?after=" + encodeURIComponent(after) : "");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        var empty = document.getElementById("transcript-empty");
        (data.entries || []).forEach(function (entry) {
          if (list.querySelector('[data-event-id="' + entry.event_id + '"]')) { return; }
          list.appendChild(render(entry));
          if (empty) { empty.remove(); empty = null; }
        });
        if (data.last_event_id !== null && data.last_event_id !== undefined) { after = String(data.last_event_id); }
        if (status) { status.textContent = "实时更新中"; status.className = "live"; }
      })
      .catch(function () {
        if (status) { status.textContent = "连接中断，正在重试…"; status.className = "live offline"; }
      })
      .then(function () { busy = false; });
  }

  setInterval(poll, INTERVAL);
}());
