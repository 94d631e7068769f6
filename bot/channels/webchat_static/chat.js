/* The web chat page: mounts rasa-webchat on the same origin's socket.io channel (SignedSocketIOInput). */
(function () {
  "use strict";

  // rasa-webchat keeps the conversation and the server-issued session id under this localStorage key.
  var STORAGE_KEY = "chat_session";
  var status = document.getElementById("connection-status");

  function storedSessionId() {
    try {
      var stored = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "null");
      return stored && stored.session_id ? stored.session_id : null;
    } catch (error) {
      return null;
    }
  }

  function showStatus(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  function onSessionConfirm(confirmed) {
    var sessionId = confirmed && confirmed.session_id ? confirmed.session_id : confirmed;
    var stored = storedSessionId();
    showStatus("");
    if (stored && stored !== sessionId) {
      // The server did not accept the stored id (e.g. it was altered): the transcript kept in the
      // browser belongs to no conversation any more, so start over cleanly.
      window.localStorage.removeItem(STORAGE_KEY);
      window.location.reload();
    }
  }

  window.WebChat.default(
    {
      socketUrl: window.location.origin,
      socketPath: "/socket.io/",
      initPayload: "/greet",
      title: "物业服务助手",
      subtitle: "物业费查询 · 报修 · 交费安排",
      inputTextFieldHint: "请输入您的问题…",
      connectingText: "正在连接物业服务助手…",
      customData: { language: "zh-CN", channel: "webchat" },
      params: { storage: "local" },
      embedded: true,
      showFullScreenButton: true,
      showCloseButton: false,
      hideWhenNotConnected: false,
      withRules: false,
      customMessageDelay: function (message) {
        return Math.min(Math.max((message || "").length * 15, 300), 1500);
      },
      onSocketEvent: {
        session_confirm: onSessionConfirm,
        connect: function () { showStatus(""); },
        disconnect: function () { showStatus("连接已断开，正在重新连接…"); },
        connect_error: function () { showStatus("暂时连不上服务器，正在重试…"); }
      }
    },
    document.getElementById("webchat")
  );
})();
