/* The web chat page: mounts rasa-webchat on the same origin's socket.io channel (SignedSocketIOInput). */
(function () {
  "use strict";

  // rasa-webchat keeps the conversation and the server-issued session id under this localStorage key.
  var STORAGE_KEY = "chat_session";
  // Set when the server refused the stored session id; the next load starts from empty storage.
  var RESET_FLAG = "chat_session_reset";
  // Why the last session ended (signed_out, idle, max_age), for the next load to tell the owner.
  var NOTICE_KEY = "chat_session_notice";
  // The sign-out request, relative to the page (/chat/session/end).
  var SIGN_OUT_URL = "session/end";
  var SIGN_OUT_TIMEOUT_MS = 5000;
  var status = document.getElementById("connection-status");
  var notice = document.getElementById("session-notice");
  var signOutButton = document.getElementById("sign-out");
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
      var reason = window.sessionStorage.getItem(NOTICE_KEY);
      if (reason) {
        window.sessionStorage.removeItem(NOTICE_KEY);
        var text = WORDING["ended_" + reason];
        if (text) {
          notice.textContent = text;
          notice.hidden = false;
        }
      }
    } catch (error) {
      // storage disabled: the widget keeps nothing between loads anyway
    }
  }

  // Forget the session on this browser and start over: the next load has empty storage, a new unverified
  // session and says why the last one ended.
  function startOver(reason) {
    try {
      window.sessionStorage.setItem(RESET_FLAG, "1");
      if (reason) {
        window.sessionStorage.setItem(NOTICE_KEY, reason);
      }
    } catch (error) {
      // storage disabled: nothing was kept, the reload starts over anyway
    }
    window.location.reload();
  }

  // Sign-out: the server ends the session (its verified link closed, the id dead); whatever it answers, this
  // browser forgets the id (an unanswered request leaves a session that expires on its own).
  var signingOut = false;

  function signOut() {
    signingOut = true;
    signOutButton.disabled = true;
    var sessionId = storedSessionId();
    if (!sessionId || !window.fetch) {
      startOver("signed_out");
      return;
    }
    var controller = window.AbortController ? new window.AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, SIGN_OUT_TIMEOUT_MS) : null;
    window.fetch(SIGN_OUT_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: sessionId }),
      credentials: "omit",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      return response.json();  // read to the end: a reload before that would cut the answer off
    }).catch(function () {
      return null;
    }).then(function () {
      if (timer) {
        window.clearTimeout(timer);
      }
      startOver("signed_out");
    });
  }

  signOutButton.title = WORDING.sign_out_title;
  signOutButton.addEventListener("click", signOut);

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
        // The server ended the session (expired, or signed out in another tab): start over and say why.
        // (While this page signs out, its own request's answer decides: the server tells the socket first.)
        session_ended: function (data) {
          if (!signingOut) {
            startOver(data && data.reason ? data.reason : "");
          }
        },
        connect: function () { showStatus(""); },
        disconnect: function () { showStatus(WORDING.disconnected); },
        connect_error: function () { showStatus(WORDING.connect_error); }
      }
    },
    document.getElementById("webchat")
  );
})();
