// The srvdns status page: renders the overview (/ui/) or one service (/ui/services/NAME),
// refreshed by blocking queries as the registry changes. The other files of this
// directory add their parts to window.srvdnsUi.
"use strict";

(function (ui) {
  function start() {
    const main = document.getElementById("main");
    const match = /^\/ui\/services\/([^/]+)\/?$/.exec(location.pathname);
    if (match) ui.renderService(main, decodeURIComponent(match[1]).toLowerCase());
    else ui.renderOverview(main);
  }

  start();
})(window.srvdnsUi);
