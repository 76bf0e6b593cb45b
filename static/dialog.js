// Show what only makes sense inside a dialog (a Close button) when this page is in one: framed
// by the LMS, or in a window another page opened. Opened directly, such a button would do
// nothing, so it stays hidden (the HTML hides it; this script reveals it).
(function () {
  "use strict";
  var inDialog = window.parent !== window || Boolean(window.opener);
  var items = document.querySelectorAll("[data-dialog-only]");
  for (var i = 0; i < items.length; i++) {
    items[i].hidden = !inDialog;
  }
})();
