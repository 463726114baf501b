// The flow pages: asks before a form that replaces the draft (data-confirm), and on narrow screens collapses
// the tree's deeper branches, keeping open the way to the node in the address (#node-x), to problems and to a
// dry run's path. Without this script every branch is open and the forms post without asking.
(function () {
  "use strict";
  var NARROW = 640;
  var KEEP_DEPTH = 2;

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
  if (location.hash.indexOf("#node-") === 0) {
    var target = document.getElementById(location.hash.slice(1));
    if (target) {
      openTo(target);
      target.scrollIntoView();
    }
  }
})();
