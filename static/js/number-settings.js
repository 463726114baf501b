// A routing number's settings page: fields shown only where they apply, and a warning before leaving the page
// with changes that are not saved. No build step, no framework.
(function () {
  "use strict";
  var page = document.querySelector(".main-col");
  if (!page) return;

  // data-show-when="name=value name2=a|b": shown while every named field has one of the values; a checkbox's
  // value is "on" when checked and "off" when not. The field's whole row (.field) is hidden with it.
  function valueOf(name) {
    var element = document.querySelector('[name="' + name + '"]');
    if (!element) return "";
    if (element.type === "checkbox") return element.checked ? "on" : "off";
    return element.value;
  }

  function applies(rule) {
    return rule.trim().split(/\s+/).every(function (condition) {
      var parts = condition.split("=");
      return parts[1].split("|").indexOf(valueOf(parts[0])) !== -1;
    });
  }

  var dependents = Array.prototype.slice.call(page.querySelectorAll("[data-show-when]"));

  function refresh() {
    dependents.forEach(function (element) {
      var box = element.matches("input, select, textarea") ? element.closest(".field") || element : element;
      box.hidden = !applies(element.dataset.showWhen);
    });
  }

  page.addEventListener("change", refresh);
  page.addEventListener("input", refresh);
  refresh();

  // Unsaved changes: a section form whose fields differ from what the page showed when it loaded. Submitting a
  // section saves that section only, so changes in the others still count.
  function snapshot(form) {
    var values = [];
    new FormData(form).forEach(function (value, name) {
      if (name === "csrfmiddlewaretoken") return;
      values.push(name + "=" + (value instanceof File ? value.name : value));
    });
    return values.join("&");
  }

  var forms = Array.prototype.slice.call(page.querySelectorAll("section form[method=post]"));
  var loaded = new Map(forms.map(function (form) { return [form, snapshot(form)]; }));
  var submitted = null;
  forms.forEach(function (form) {
    form.addEventListener("submit", function () { submitted = form; });
  });

  window.addEventListener("beforeunload", function (event) {
    var unsaved = forms.some(function (form) { return form !== submitted && snapshot(form) !== loaded.get(form); });
    submitted = null;
    if (unsaved) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
