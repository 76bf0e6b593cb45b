// Tell the LMS that registration is over: post the LTI close message to the window
// that opened this page (Brightspace opens a tab) or the page framing it (Canvas, Moodle).
(function () {
  "use strict";

  // A Gatehouse page that opened this window: same origin, and so readable from here.
  function gatehousePage(target) {
    try {
      return target.location.origin === window.location.origin;
    } catch (e) {
      return false;  // the LMS's page: another origin
    }
  }

  // The window opened by Gatehouse's own page in the LMS frame (cookies blocked there, or an
  // identity provider's window the flow went on in), or null in the LMS's frame or tab.
  function openedByGatehouse() {
    return window.opener && gatehousePage(window.opener) ? window.opener : null;
  }

  // The LMS: the page framing this one (Canvas, Moodle) or the one that opened this tab
  // (Brightspace). In a window Gatehouse opened, the LMS is the frame's parent (or the tab's
  // opener): told directly, not through Gatehouse's page there, the message cannot be lost while
  // that page is between two documents (its polling moves it on by itself).
  function lmsWindow() {
    var gatehouse = openedByGatehouse();
    if (gatehouse) {
      var above = gatehouse.opener || gatehouse.parent;
      return above && above !== gatehouse ? above : gatehouse;
    }
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

  // The pages render these buttons disabled: a click before this script had run would do
  // nothing (on a slow connection, or a busy machine), and the dialog would stay open.
  function enable(selector, action) {
    var found = document.querySelectorAll(selector);
    for (var i = 0; i < found.length; i++) {
      found[i].addEventListener("click", action);
      found[i].disabled = false;
    }
  }

  // A passing fault (timeout, 5xx): the same request again, token and all, from this frame.
  enable("[data-retry]", function () { window.location.reload(); });
  enable("[data-lti-close-button]", closeLti);
  if (document.body.getAttribute("data-lti-close") === "auto") {
    var gatehouse = openedByGatehouse();
    if (gatehouse) {
      // Gatehouse's page in the LMS frame, polling, reaches this same page and tells the LMS
      // itself: told from here too, the LMS would get the message twice. Hurry it on, and close
      // this window, which is no longer needed.
      gatehouse.postMessage({ subject: "gatehouse.progress" }, window.location.origin);
      window.setTimeout(function () { window.close(); }, 300);
    } else {
      postClose();
    }
  }
})();
