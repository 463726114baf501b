// Searchable inputs: a text input with data-lookup (the name of a person, schedule, policy or time zone) gets a
// list of suggestions from that URL as one types. Arrow keys move through the list, Enter or a tap picks one,
// Escape closes it. Without this script the input still works: the server reads the typed name.
(function () {
  "use strict";
  var counter = 0;

  function enhance(input) {
    var list = document.createElement("ul");
    var id = "lookup-list-" + (++counter);
    var timer = null;
    var latest = 0;
    var active = -1;
    list.id = id;
    list.className = "lookup-list";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.parentNode.insertBefore(list, input.nextSibling);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", id);
    input.setAttribute("aria-expanded", "false");

    function options() {
      return list.querySelectorAll("[role=option]");
    }

    function close() {
      list.hidden = true;
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      var items = options();
      if (!items.length) return;
      active = (index + items.length) % items.length;
      items.forEach(function (item, i) {
        item.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      input.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({block: "nearest"});
    }

    function pick(item) {
      latest++;  // an answer still on its way would open the list again
      input.value = item.dataset.value;
      close();
      input.dispatchEvent(new Event("change", {bubbles: true}));
    }

    function show(results) {
      // A later answer (the last keystroke's search) must not drop the option the arrow keys chose: Enter would
      // then submit the form with the half-typed text.
      var chosen = active >= 0 && options()[active] ? options()[active].dataset.value : null;
      var keep = -1;
      list.textContent = "";
      results.forEach(function (result, i) {
        var item = document.createElement("li");
        item.id = id + "-" + i;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", "false");
        item.dataset.value = result.value;
        if (chosen !== null && item.dataset.value === chosen) keep = i;
        item.textContent = result.label;
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();  // keep the focus in the input
          pick(item);
        });
        list.appendChild(item);
      });
      list.hidden = !results.length;
      input.setAttribute("aria-expanded", results.length ? "true" : "false");
      active = -1;
      input.removeAttribute("aria-activedescendant");
      if (keep >= 0) highlight(keep);
    }

    function search() {
      var ask = ++latest;
      fetch(input.dataset.lookup + "?q=" + encodeURIComponent(input.value.trim()), {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : {results: []}; })
        .then(function (data) { if (ask === latest && document.activeElement === input) show(data.results); })
        .catch(function () { close(); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 150);
    });
    input.addEventListener("focus", function () {
      if (!input.value) search();
    });
    input.addEventListener("blur", close);
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) { search(); return; }
        highlight(active + (event.key === "ArrowDown" ? 1 : -1));
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();
        pick(options()[active]);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
  }

  document.querySelectorAll("input[data-lookup]").forEach(enhance);
})();
