// Gate pages: move on by themselves when another window (identity provider, Stripe, or the
// "Continue in a new window" fallback) finishes a step, and detect cookies blocked in the frame.
(function () {
  "use strict";
  var body = document.body;
  var own = window.location.origin;

  function byId(id) { return document.getElementById(id); }
  function show(id, visible) {
    var el = byId(id);
    if (el) { el.hidden = !visible; }
  }

  // A page in a window Gatehouse opened: tell the page that opened it, then close.
  var done = body.getAttribute("data-window-done");
  if (done !== null) {
    if (window.opener) {
      window.opener.postMessage({ subject: "gatehouse.progress" }, own);
    }
    var closers = document.querySelectorAll("[data-window-close]");
    for (var c = 0; c < closers.length; c++) {
      closers[c].addEventListener("click", function () { window.close(); });
    }
    if (done === "ok" && window.opener) {
      window.setTimeout(function () { window.close(); }, 1500);
    }
    return;
  }

  var statusUrl = body.getAttribute("data-status-url");
  var resumeUrl = body.getAttribute("data-resume-url");
  var gate = body.getAttribute("data-gate");
  if (!statusUrl) { return; }

  var timer = null;
  // The payment session shown when the page loaded: a cancel counts only for a newer one.
  var actions = byId("payment-actions");
  var knownSession = actions ? actions.getAttribute("data-last-session") : "";

  function stop() {
    if (timer) { window.clearInterval(timer); timer = null; }
  }

  function poll() {
    window.fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (status) {
        if (status.state !== "pending" || status.next !== gate) {
          stop();
          window.location.assign(resumeUrl);
          return;
        }
        var ended = { cancelled: "payment-cancelled-live", unavailable: "payment-unavailable-live" };
        if (gate === "payment" && ended[status.payment] &&
            status.payment_session !== knownSession) {
          // Checkout was left, or Stripe could not be used: stop waiting, offer to try again.
          stop();
          knownSession = status.payment_session;
          show("waiting", false);
          show(ended[status.payment], true);
          var pay = byId("pay");
          if (pay && status.payment === "unavailable") {
            pay.textContent = pay.getAttribute("data-retry-label");
          }
        }
      })
      .catch(function () { /* keep polling: the network may come back */ });
  }

  function wait() {
    show("waiting", true);
    if (!timer) { timer = window.setInterval(poll, 1500); }
  }

  var openers = document.querySelectorAll("[data-open-window]");
  for (var i = 0; i < openers.length; i++) {
    openers[i].addEventListener("click", function (event) {
      event.preventDefault();
      show("payment-cancelled", false);
      show("payment-cancelled-live", false);
      show("payment-unavailable", false);
      show("payment-unavailable-live", false);
      window.open(this.href, "gatehouse-" + this.getAttribute("data-open-window"));
      wait();
    });
  }

  var fallback = byId("continue-in-new-window");
  if (fallback) {
    fallback.addEventListener("click", function () {
      window.open(fallback.getAttribute("data-window-url"), "gatehouse-window");
      show("cookie-fallback", false);
      fallback.hidden = true;
      wait();
    });
  }

  // Another window finished a step (static/close.js, window_done.html): look now, not at the
  // next tick. The LMS is told by the window the flow ends in, or by this page once it moves on.
  window.addEventListener("message", function (event) {
    if (event.origin === own && event.data && event.data.subject === "gatehouse.progress") {
      poll();
    }
  });

  // Inside the LMS frame, check that the session cookie came back; offer a window if not.
  var cookieUrl = body.getAttribute("data-cookie-url");
  if (cookieUrl && window.top !== window) {
    window.fetch(cookieUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (probe) { if (!probe.ok) { show("cookie-fallback", true); } })
      .catch(function () { show("cookie-fallback", true); });
  }

  if (body.getAttribute("data-poll")) { wait(); }
})();
