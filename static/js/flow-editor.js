// The flow pages: asks before a form that replaces the draft (data-confirm), and on narrow screens collapses
// the tree's deeper branches, keeping open the way to the node in the address (#node-x), to problems and to a
// dry run's path. Without this script every branch is open and the forms post without asking.
(function () {
  "use strict";
  var NARROW = 640;
  var KEEP_DEPTH = 3;

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  function openTo(element) {
    for (var node = element; node; node = node.parentElement) {
      if (node.tagName === "DETAILS" && node.classList.contains("branch-body")) node.open = true;
    }
  }

  if (window.innerWidth <= NARROW) {
    document.querySelectorAll("details.branch-body").forEach(function (details) {
      if (Number(details.getAttribute("data-depth")) >= KEEP_DEPTH) details.open = false;
    });
    document.querySelectorAll(".node.has-problems, .node.lit").forEach(openTo);
  }
  // A "go to" link or a problem's link may point into a collapsed branch: open the way to it.
  function showHash() {
    if (location.hash.indexOf("#node-") !== 0) return;
    var target = document.getElementById(location.hash.slice(1));
    if (target) {
      openTo(target);
      target.querySelectorAll(":scope > ul.branches > li > details.branch-body").forEach(function (details) {
        details.open = true;
      });
      target.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", showHash);
  showHash();
})();
