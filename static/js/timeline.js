/* The on-call timeline of a schedule page: places each shift bar along its day from its data-left and data-width
   (percent of the day). Set here rather than in style attributes, which the Content-Security-Policy refuses. */
(function () {
  "use strict";
  document.querySelectorAll(".tl-bar[data-left]").forEach(function (bar) {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  });
})();
