/* The web chat page: mounts rasa-webchat on the same origin's socket.io channel (SignedSocketIOInput). */
(function () {
  "use strict";

  // rasa-webchat keeps the conversation and the server-issued session id under this localStorage key.
  var STORAGE_KEY = "chat_session";
  // Set when the server refused the stored session id; the next load starts from empty storage.
  var RESET_FLAG = "chat_session_reset";
  var status = document.getElementById("connection-status");
  // Every label the page shows comes from data/wording.yml, put into the page by the server.
  var WORDING = JSON.parse(document.getElementById("page-wording").textContent);

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

  function startOverIfReset() {
    try {
      if (window.sessionStorage.getItem(RESET_FLAG)) {
        window.sessionStorage.removeItem(RESET_FLAG);
        window.localStorage.removeItem(STORAGE_KEY);
      }
    } catch (error) {
      // storage disabled: the widget keeps nothing between loads anyway
    }
  }

  startOverIfReset();
  // The id this page presents to the server; the widget overwrites storage as soon as the server answers.
  var presentedId = storedSessionId();

  function onSessionConfirm(confirmed) {
    var sessionId = confirmed && confirmed.session_id ? confirmed.session_id : confirmed;
    showStatus("");
    if (presentedId && presentedId !== sessionId) {
      // The server did not accept the stored id (e.g. it was altered): the transcript kept in the
      // browser belongs to no conversation. The widget rewrites its storage until the page unloads, so
      // the clean-up happens at the start of the next load, which then gets a fresh session and greeting.
      window.sessionStorage.setItem(RESET_FLAG, "1");
      window.location.reload();
      return;
    }
    presentedId = sessionId;
  }

  window.WebChat.default(
    {
      socketUrl: window.location.origin,
      socketPath: "/socket.io/",
      initPayload: "/greet",
      title: WORDING.title,
      subtitle: WORDING.subtitle,
      inputTextFieldHint: WORDING.input_hint,
      connectingText: WORDING.connecting,
      customData: { language: "zh-CN", channel: "webchat" },
      params: { storage: "local" },
      embedded: true,
      showFullScreenButton: false,
      showCloseButton: false,
      hideWhenNotConnected: false,
      withRules: false,
      customMessageDelay: function (message) {
        return Math.min(Math.max((message || "").length * 15, 300), 1500);
      },
      onSocketEvent: {
        session_confirm: onSessionConfirm,
        connect: function () { showStatus(""); },
        disconnect: function () { showStatus(WORDING.disconnected); },
        connect_error: function () { showStatus(WORDING.connect_error); }
      }
    },
    document.getElementById("webchat")
  );
})();
