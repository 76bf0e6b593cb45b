// The platform side of 1EdTech's client-side postMessages (lti-cs-pm, lti-pm-s v0p1), for the
// simulated LMS's course page and its storage frame (app/simulator/launch.py).
//
// body data-tool-origin: the only origin answered (the launched tool's); others get the
//   "wrong_origin" error, as Canvas's response_messages.ts sends.
// body data-answers-capabilities (course page): answer lti.capabilities, naming
//   data-storage-frame as the frame for put/get unless it is "_parent".
// body data-answers-storage: keep values per origin and answer lti.put_data / lti.get_data.
// Every message received is kept in window.ltiMessages for tests.
(function () {
  "use strict";
  var body = document.body;
  var toolOrigin = body.getAttribute("data-tool-origin");
  var frame = body.getAttribute("data-storage-frame");
  var capabilities = body.hasAttribute("data-answers-capabilities");
  var storage = body.hasAttribute("data-answers-storage");
  var stored = {};
  window.ltiMessages = [];

  window.addEventListener("message", function (event) {
    var message = event.data;
    if (!message || typeof message !== "object" || typeof message.subject !== "string") {
      return;
    }
    var subject = message.subject.replace(/^org\.imsglobal\./, "");
    if (subject !== "lti.capabilities" && subject !== "lti.put_data" && subject !== "lti.get_data") {
      return;
    }
    if (subject === "lti.capabilities" ? !capabilities : !storage) { return; }
    window.ltiMessages.push({
      subject: message.subject, origin: event.origin, key: message.key, message_id: message.message_id
    });

    function reply(contents) {
      var answer = { subject: message.subject + ".response", message_id: message.message_id };
      for (var name in contents) {
        if (Object.prototype.hasOwnProperty.call(contents, name)) { answer[name] = contents[name]; }
      }
      event.source.postMessage(answer, event.origin);
    }

    if (event.origin !== toolOrigin) {
      reply({ error: { code: "wrong_origin", message: "not the launched tool's origin" } });
      return;
    }
    if (subject === "lti.capabilities") {
      var supported = [{ subject: "lti.capabilities" }, { subject: "lti.put_data" },
        { subject: "lti.get_data" }];
      if (frame && frame !== "_parent") {
        supported[1].frame = frame;
        supported[2].frame = frame;
      }
      reply({ supported_messages: supported });
    } else if (!message.key || !message.message_id) {
      reply({ error: { code: "bad_request", message: "key and message_id are required" } });
    } else if (subject === "lti.put_data") {
      stored[event.origin] = stored[event.origin] || {};
      stored[event.origin][message.key] = message.value;
      reply({ key: message.key, value: message.value });
    } else {
      var values = stored[event.origin] || {};
      reply({
        key: message.key,
        value: Object.prototype.hasOwnProperty.call(values, message.key) ? values[message.key] : null
      });
    }
  });
})();
