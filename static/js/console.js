// PureBridge console: copy buttons and small conveniences. No framework.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP consoles have no clipboard API: fall back to a selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      document.body.removeChild(area);
    }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) return;
      var text = "value" in source && source.tagName === "INPUT" ? source.value : source.textContent;
      copyText(text).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        button.classList.add("copied");
        setTimeout(function () {
          button.textContent = label;
          button.classList.remove("copied");
        }, 1600);
      });
      return;
    }
    // Close an open account menu when clicking elsewhere.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // Forms that destroy something ask first; htmx asks itself (hx-confirm)
  // for the forms it submits.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (window.htmx && (form.hasAttribute("hx-post") || form.hasAttribute("hx-get"))) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // A filter form with a custom range (data-custom-range) asks for its report
  // only once both days are filled in: choosing "Custom" shows the two date
  // fields (CSS) and moves to the first, and asking without them would only
  // earn a form error. An explicit submit still goes, to show that error.
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!form.hasAttribute("data-custom-range") || form.elements.range.value !== "custom") return;
    var trigger = event.detail.triggeringEvent;
    if (trigger && trigger.type === "submit") return;
    var empty = [form.elements.start, form.elements.end].filter(function (input) {
      return !input.value;
    });
    if (empty.length === 0) return;
    event.preventDefault();
    if (trigger && trigger.target === form.elements.range) empty[0].focus();
  });
})();
