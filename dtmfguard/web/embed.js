// SPDX-License-Identifier: GPL-2.0-or-later
// Embed the agent payment panel in a CRM page:
//   <script src="https://guard:8070/panel/embed.js"></script>
//   <div id="payment"></div>
//   <script>dtmfguardPanel.mount(document.getElementById("payment"), {call: handle, ticket: ticket});</script>
// The panel runs in an iframe from the guard's own origin (its Content-Security-Policy allows the
// origins in control.cors_origins to frame it), so the CRM page never handles the feed itself.
(function () {
  "use strict";
  var origin = (document.currentScript && new URL(document.currentScript.src).origin) || "";
  window.dtmfguardPanel = {
    mount: function (element, opts) {
      var frame = document.createElement("iframe");
      frame.src = origin + "/panel/#call=" + encodeURIComponent(opts.call) + "&ticket=" + encodeURIComponent(opts.ticket);
      frame.title = "Card payment";
      frame.style.border = "0"; frame.style.width = opts.width || "440px"; frame.style.height = opts.height || "360px";
      element.appendChild(frame);
      return frame;
    }
  };
})();
