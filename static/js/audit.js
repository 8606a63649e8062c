// Behaviour of the audit-log screens. No inline scripts or handlers anywhere:
// everything is wired here, so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  // Filter requests carry only the filters that are set, so the pushed URL
  // stays short and shareable (?action=approved rather than ?action=approved&q=&actor=).
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.tagName !== "FORM" || !form.classList.contains("filters")) return;
    var data = event.detail.formData;
    Array.from(data.keys()).forEach(function (key) {
      if (data.getAll(key).every(function (v) { return v === ""; })) data.delete(key);
    });
  });

  // Same for the form without htmx: drop empty fields before a plain submit.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("filters") || window.htmx) return;
    Array.from(form.elements).forEach(function (el) {
      if (el.name && el.value === "") el.disabled = true;
    });
  });

  function expandLink(slot) {
    return document.querySelector('a.expand[aria-controls="detail-row-' + slot.id.slice(7) + '"]');
  }

  function setExpanded(link, open) {
    var row = document.getElementById(link.getAttribute("aria-controls"));
    if (!row) return;
    row.hidden = !open;
    link.setAttribute("aria-expanded", open ? "true" : "false");
    link.closest("tr").classList.toggle("is-open", open);
  }

  // Row expansion: the first activation loads the detail (htmx); later ones
  // only toggle it, without another request.
  document.addEventListener("htmx:confirm", function (event) {
    var link = event.detail.elt;
    if (link.classList && link.classList.contains("expand") && link.dataset.loaded) {
      event.preventDefault();
      setExpanded(link, link.getAttribute("aria-expanded") !== "true");
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var slot = event.detail.target;
    if (slot && slot.classList && slot.classList.contains("detail-slot")) {
      var link = expandLink(slot);
      if (link) {
        link.dataset.loaded = "true";
        setExpanded(link, true);
      }
    }
  });

  // The Dashboard tenant picker switches as soon as a tenant is chosen.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
  });
})();
