// Launch pages: tie the launch to this browser (app/web/launch.py explains the three ways).
//
// The login page (templates/launch/login.html) goes on to the LMS's authorization endpoint once
// the binding is in place: the cookie Gatehouse set came through, or else the LMS's platform
// storage holds the login's value; failing both inside a frame, it offers a new window. The
// launch page (templates/launch/storage.html) reads the value back and posts it to
// /lti/launch/verify.
//
// Platform storage follows 1EdTech "LTI Client Side postMessages" (imsglobal.org/spec/lti-cs-pm,
// lti-cs-oidc and lti-pm-s, v0p1): ask the LMS window for lti.capabilities, then send
// lti.put_data / lti.get_data to the frame it names (or the login's lti_storage_target,
// "_parent" meaning the LMS window itself) with the platform's origin as target origin, and
// accept an answer only from that origin with the same message_id. Canvas answers capabilities
// from its main window and storage from a frame named "post_message_forwarding" on its OIDC
// domain (instructure/canvas-lms, ui/shared/lti/jquery/subjects/lti.capabilities.ts).
(function () {
  "use strict";
  var body = document.body;
  var CAPABILITIES_TIMEOUT = 2000;
  var DATA_TIMEOUT = 3000;
  var RESEND_INTERVAL = 250;

  function byId(id) { return document.getElementById(id); }
  function show(id, visible) {
    var el = byId(id);
    if (el) { el.hidden = !visible; }
  }

  // The LMS window: the page framing this one, or the one that opened it.
  function lmsWindow() {
    var host = window.opener || window.parent;
    return host && host !== window ? host : null;
  }

  function messageId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // Post `message` to `target` and resolve with the matching "<subject>.response".
  //
  // With `resend`, post it again every RESEND_INTERVAL until answered: a message posted to a
  // frame whose script is not listening yet is dropped without a trace, and the LMS's storage
  // frame loads alongside this one (Canvas's post_message_forwarding is a sibling frame), so
  // the first lti.put_data can arrive before its listener. put_data and get_data are
  // idempotent and keep their message_id, so the first answer settles it.
  function ask(target, targetOrigin, message, timeout, resend) {
    return new Promise(function (resolve, reject) {
      var id = messageId();
      var timer = window.setTimeout(function () { done(); reject(new Error("timeout")); }, timeout);
      var repeat = resend ? window.setInterval(post, RESEND_INTERVAL) : null;
      function done() {
        window.clearTimeout(timer);
        window.clearInterval(repeat);
        window.removeEventListener("message", listen);
      }
      function post() {
        try {
          target.postMessage(message, targetOrigin);
        } catch (e) {
          done();
          reject(new Error("unsupported"));
        }
      }
      function listen(event) {
        var data = event.data;
        if (!data || typeof data !== "object" || data.message_id !== id) { return; }
        if (data.subject !== message.subject + ".response") { return; }
        if (targetOrigin !== "*" && event.origin !== targetOrigin) { return; }
        done();
        if (data.error) { reject(new Error("refused")); } else { resolve(data); }
      }
      window.addEventListener("message", listen);
      message.message_id = id;
      post();
    });
  }

  // Resolve with {frame, put, get}: where and under which subjects to store, or reject.
  function platformStorage(host, storageTarget) {
    // Capabilities come from the LMS window, whatever its origin (Canvas: not the OIDC domain);
    // nothing secret is sent, and the storage messages below are addressed by origin.
    return ask(host, "*", { subject: "lti.capabilities" }, CAPABILITIES_TIMEOUT).then(
      function (answer) {
        var supported = answer.supported_messages || [];
        var found = {};
        for (var i = 0; i < supported.length; i++) {
          if (supported[i] && typeof supported[i].subject === "string") {
            found[supported[i].subject] = supported[i];
          }
        }
        var prefix = found["lti.put_data"] ? "lti." :
          found["org.imsglobal.lti.put_data"] ? "org.imsglobal.lti." : null;
        if (!prefix || !found[prefix + "get_data"]) { throw new Error("unsupported"); }
        return {
          frame: found[prefix + "put_data"].frame || storageTarget,
          put: prefix + "put_data",
          get: prefix + "get_data"
        };
      },
      function (error) {
        // No answer: the login's lti_storage_target alone also says the LMS supports it
        // (canvas-lms doc/api/lti_dev_key_config.md, "Launching without Cookies").
        if (error.message === "timeout" && storageTarget) {
          return { frame: storageTarget, put: "lti.put_data", get: "lti.get_data" };
        }
        throw error;
      }
    ).then(function (storage) {
      var name = storage.frame || "_parent";
      var frame = null;
      try {
        frame = name === "_parent" ? host : host.frames[name];
      } catch (e) {
        frame = null;
      }
      if (!frame) { throw new Error("unsupported"); }
      storage.window = frame;
      return storage;
    });
  }

  function cookieKept(name) {
    var cookies = document.cookie ? document.cookie.split(";") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].trim().indexOf(name + "=") === 0) { return true; }
    }
    return false;
  }

  function login() {
    var authUrl = body.getAttribute("data-auth-url");
    var origin = body.getAttribute("data-platform-origin");
    var storageTarget = body.getAttribute("data-storage-target");
    function proceed() { window.location.replace(authUrl); }
    function fallback() {
      show("login-working", false);
      // A new top-level window keeps first-party cookies; an own window gains nothing.
      show(window.top !== window ? "login-new-window" : "login-blocked", true);
    }
    if (cookieKept(body.getAttribute("data-login-check"))) {
      proceed();
      return;
    }
    var host = lmsWindow();
    if (!host || storageTarget === null) {
      fallback();
      return;
    }
    platformStorage(host, storageTarget).then(function (storage) {
      return ask(storage.window, origin, {
        subject: storage.put,
        key: body.getAttribute("data-storage-key"),
        value: body.getAttribute("data-storage-value")
      }, DATA_TIMEOUT, true);
    }).then(proceed, fallback);
  }

  function launchStorage() {
    var form = byId("launch-verify");
    var origin = body.getAttribute("data-platform-origin");
    var key = body.getAttribute("data-storage-key");
    function submit(value, error) {
      form.elements.lti_storage_value.value = value || "";
      form.elements.lti_storage_error.value = error || "";
      form.submit();
    }
    var host = lmsWindow();
    if (!host) {
      submit("", "no-lms-window");
      return;
    }
    platformStorage(host, body.getAttribute("data-storage-target")).then(function (storage) {
      return ask(storage.window, origin, { subject: storage.get, key: key }, DATA_TIMEOUT, true);
    }).then(function (answer) {
      if (answer.key !== key || typeof answer.value !== "string" || !answer.value) {
        submit("", "no-value");
      } else {
        submit(answer.value, "");
      }
    }, function (error) {
      submit("", error.message);
    });
  }

  var opener = byId("open-launch-window");
  if (opener) {
    opener.addEventListener("click", function () {
      // noopener: the new window's login must not take this frame for the LMS.
      window.open(opener.getAttribute("data-window-url"), "_blank", "noopener");
      show("login-new-window", false);
      show("login-window-opened", true);
    });
  }

  if (body.hasAttribute("data-lti-login")) {
    login();
  } else if (body.hasAttribute("data-lti-launch-storage")) {
    launchStorage();
  }
})();
