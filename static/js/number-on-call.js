// A routing number's page: "who would be called right now" is answered by its own small request after the page
// has loaded (it asks every option's policy and schedules), so the page with all its settings answers sooner.
// Without the script the card links to the same answer as a page. No build step, no framework.
(function () {
  "use strict";
  var card = document.getElementById("on-call");
  var link = card && card.querySelector("[data-loading]");
  if (!link || !card.dataset.src) return;
  fetch(card.dataset.src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
    .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
    .then(function (html) {
      link.insertAdjacentHTML("beforebegin", html);
      link.remove();
    })
    .catch(function () { /* the link stays: the same answer as a page */ });
})();
