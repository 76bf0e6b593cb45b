// Tell the LMS that registration is over: post the LTI close message to the window
// that opened this page (Brightspace opens a tab) or the page framing it (Canvas, Moodle).
(function () {
  "use strict";

  function lmsWindow() {
    var target = window.opener || window.parent;
    return target && target !== window ? target : null;
  }

  function postClose() {
    var target = lmsWindow();
    if (target) {
      // An object, not a string: Canvas and Moodle read event.data.subject.
      target.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
    }
  }

  function closeLti() {
    postClose();
    if (window.opener) {
      window.close();
    }
  }

  // A passing fault (timeout, 5xx): the same request again, token and all, from this frame.
  var retries = document.querySelectorAll("[data-retry]");
  for (var r = 0; r < retries.length; r++) {
    retries[r].addEventListener("click", function () { window.location.reload(); });
  }

  // The flow finished in a window Gatehouse opened (cookies blocked in the LMS frame), and this
  // frame, polling, reached its own copy of this page first: the window's close message (its
  // Done button) arrives here, not at the gate page that opened the window. Relay it to the LMS.
  // A gate page (data-status-url) relays it with static/flow.js: relayed here too, the LMS would
  // get the message twice.
  var relayedByFlow = document.body.hasAttribute("data-status-url");
  window.addEventListener("message", function (event) {
    if (relayedByFlow) { return; }
    if (event.origin === window.location.origin && event.data &&
        event.data.subject === "org.imsglobal.lti.close" && event.source !== window) {
      postClose();
    }
  });

  var buttons = document.querySelectorAll("[data-lti-close-button]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", closeLti);
  }
  if (document.body.getAttribute("data-lti-close") === "auto") {
    postClose();
    // The flow ran in a window Gatehouse opened (cookies were blocked in the LMS frame):
    // the frame relays the message to the LMS, and this window is no longer needed.
    if (window.name === "gatehouse-window" && window.opener) {
      window.setTimeout(function () { window.close(); }, 300);
    }
  }
})();
