// Copy buttons: <button data-copy="ID"> copies the text of the element #ID (a <code>, or the
// footer's hidden <textarea> of details) and says so in the [data-copy-status] next to it.
//
// The Clipboard API first. Inside an LMS's cross-origin iframe it is refused unless the LMS
// grants allow="clipboard-write", which few do, so then the older way: select the text in a
// readonly textarea and document.execCommand("copy"). If that is refused too, the text stays
// selected and on screen, and the status asks for Ctrl+C.
(function () {
  "use strict";
  // Included once per copy button: the first inclusion does the work.
  if (window.gatehouseCopy) {
    return;
  }
  window.gatehouseCopy = true;

  var COPIED = "Copied";
  var PRESS_KEYS = /Mac|iPhone|iPad/.test(navigator.platform || "") ? "Press \u2318C to copy" : "Press Ctrl+C to copy";

  function textOf(source) {
    var text = source.tagName === "TEXTAREA" ? source.value : source.textContent;
    return text.replace(/^\s+|\s+$/g, "");
  }

  function statusFor(button) {
    var next = button.nextElementSibling;
    while (next && !next.hasAttribute("data-copy-status")) {
      next = next.nextElementSibling;
    }
    return next;
  }

  function say(button, message) {
    var status = statusFor(button);
    if (!status) {
      return;
    }
    // Emptied first so that a second "Copied" is announced again.
    status.textContent = "";
    window.setTimeout(function () { status.textContent = message; }, 50);
  }

  function copyBySelection(text, returnFocus) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-scratch";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (refused) {
      copied = false;
    }
    document.body.removeChild(area);
    // Selecting moved the focus off the button: give it back, for keyboard users.
    if (returnFocus) {
      returnFocus.focus();
    }
    return copied;
  }

  function leaveSelected(source) {
    if (source.tagName === "TEXTAREA") {
      source.hidden = false;
      source.focus();
      source.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallBack(button, source, text) {
    if (copyBySelection(text, button)) {
      say(button, COPIED);
    } else {
      leaveSelected(source);
      say(button, PRESS_KEYS);
    }
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = textOf(source);
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, COPIED); },
        function () { fallBack(button, source, text); }
      );
    } else {
      fallBack(button, source, text);
    }
  }

  // Shown only now that they work (they are hidden in the HTML).
  var buttons = document.querySelectorAll("[data-copy]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].hidden = false;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (button) {
      copy(button);
    }
  });
})();
