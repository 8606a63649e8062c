// Behaviour of the audit-log screens. No inline scripts or handlers anywhere:
// everything is wired here, so a strict Content-Security-Policy holds. Every
// request made here has a plain-HTTP twin in the markup (links and forms).
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function isFilters(el) {
    return el && el.tagName === "FORM" && el.classList.contains("filters");
  }

  // Filter requests carry only the filters that are set, so the pushed URL
  // stays short and shareable (?action=approved rather than ?action=approved&q=&actor=).
  document.addEventListener("htmx:configRequest", function (event) {
    if (!isFilters(event.detail.elt)) return;
    var data = event.detail.formData;
    boxOrControls(event.detail.elt, data, event.detail.triggeringEvent);
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

  // --- The search box and the controls describe one view (issue 16). The box
  // shows the controls' filters as qualifiers and then the free words (the
  // server renders that text into data-box). Submitting an edited box makes the
  // box the source: the controls a qualifier sets are left out and the server
  // reads the qualifiers (auditui/search.py, the one parser). Changing a control
  // sends the controls with the box's free words only. Either way the answer
  // carries the view's parameters and box text, and both are set from them; the
  // server's canonical URL is the one history entry (HX-Push-Url).
  var boxEdited = false;

  function searchBox(form) {
    return form ? form.querySelector("#f-q") : null;
  }

  function initBox() {
    var box = document.getElementById("f-q");
    if (box && box.dataset.box !== undefined) box.value = box.dataset.box;
    boxEdited = false;
  }

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "f-q") boxEdited = true;
  });

  function boxOrControls(form, data, trigger) {
    var box = searchBox(form);
    if (!box) return;
    if (boxEdited && trigger && trigger.type === "submit") {
      (form.dataset.qualifiedKeys || "").split(" ").forEach(function (key) {
        if (key) data.delete(key);
      });
      data.set("q", box.value);
    } else {
      data.set("q", box.dataset.words || "");
    }
  }

  function namedControl(form, name) {
    return Array.from(form.elements).find(function (el) {
      return el.name === name && el.type !== "hidden";
    });
  }

  function syncControls(form, query) {
    var params = new URLSearchParams(query);
    Array.from(form.elements).forEach(function (el) {
      if (!el.name || el.name === "q" || el.name === "range" || el.type === "hidden" ||
          el.type === "submit") return;
      var value = params.get(el.name) || "";
      el.value = value;
      if (el.tagName === "SELECT" && el.value !== value) {
        // A value the dropdown does not offer still shows as chosen.
        var option = document.createElement("option");
        option.value = value;
        option.textContent = value;
        el.appendChild(option);
        el.value = value;
      }
    });
    var range = form.querySelector("#f-range");
    if (range) {
      if (params.get("from") || params.get("to")) {
        customOption(range).selected = true;
      } else {
        var custom = range.querySelector('option[value=""]');
        if (custom) custom.remove();
        range.value = params.get("range") || range.dataset.default || "30d";
      }
    }
    // Filters without a control of their own ride along in hidden fields.
    form.querySelectorAll("input[data-hidden-filter]").forEach(function (el) { el.remove(); });
    params.forEach(function (value, key) {
      if (key === "q" || namedControl(form, key)) return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = key;
      input.value = value;
      input.setAttribute("data-hidden-filter", "");
      form.insertBefore(input, form.firstChild);
    });
    narrowActors(form);
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var text = xhr ? xhr.getResponseHeader("X-Search-Box") : null;
    if (text === null) return;
    var form = document.querySelector("form.filters");
    var box = searchBox(form);
    if (!box) return;
    syncControls(form, xhr.getResponseHeader("X-Search-Params") || "");
    box.dataset.words = decodeURIComponent(xhr.getResponseHeader("X-Search-Words") || "");
    box.dataset.box = decodeURIComponent(text);
    box.value = box.dataset.box;
    boxEdited = false;
  });

  // --- Controls that depend on each other, adjusted before htmx reads the form
  // (capture phase: this runs before the form's own change listener).

  // From/To replace the period: the Period then reads "Custom dates" (no value,
  // so it is not sent); picking a period clears From/To.
  function customOption(range) {
    var option = range.querySelector('option[value=""]');
    if (!option) {
      option = document.createElement("option");
      option.value = "";
      option.textContent = "Custom dates";
      range.insertBefore(option, range.firstChild);
    }
    return option;
  }

  // With a tenant chosen, only that tenant's actors are offered; an actor of
  // another tenant is dropped (it would match nothing there).
  function narrowActors(form) {
    var tenant = form.querySelector("#f-tenant");
    var actor = form.querySelector("#f-actor");
    if (!tenant || !actor) return;
    var slug = tenant.value;
    Array.from(actor.options).forEach(function (option) {
      if (!option.value) return;
      var tenants = (option.dataset.tenants || "").split(" ");
      var fits = !slug || tenants.indexOf(slug) >= 0;
      option.hidden = !fits;
      if (!fits && option.selected) actor.value = "";
    });
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    var form = el.form;
    if (!isFilters(form)) return;
    var range = form.querySelector("#f-range");
    if ((el.id === "f-from" || el.id === "f-to") && range) {
      var from = form.querySelector("#f-from").value;
      var to = form.querySelector("#f-to").value;
      if (from || to) {
        customOption(range).selected = true;
      } else {
        // Both cleared: back to the default period.
        var custom = range.querySelector('option[value=""]');
        if (custom) custom.remove();
        range.value = range.dataset.default || "30d";
      }
    } else if (el.id === "f-range" && el.value) {
      form.querySelector("#f-from").value = "";
      form.querySelector("#f-to").value = "";
      var preset = range.querySelector('option[value=""]');
      if (preset) preset.remove();
    } else if (el.id === "f-tenant") {
      narrowActors(form);
    }
  }, true);

  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    var trigger = event.detail.triggeringEvent;
    // Enter in the search box fires "change" and then "submit": only the submit
    // runs, so one search is one request and one history entry.
    if (isFilters(elt) && trigger && trigger.type === "change" &&
        trigger.target && trigger.target.type === "search") {
      event.preventDefault();
      return;
    }
    // Row expansion: the first activation loads the detail (htmx); later ones
    // only toggle it, without another request.
    if (elt.classList && elt.classList.contains("expand") && elt.dataset.loaded) {
      event.preventDefault();
      setExpanded(elt, elt.getAttribute("aria-expanded") !== "true");
    }
  });

  // --- Rows

  function expandButton(slot) {
    return document.querySelector('.expand[aria-controls="detail-row-' + slot.id.slice(7) + '"]');
  }

  function setExpanded(button, open) {
    var row = document.getElementById(button.getAttribute("aria-controls"));
    if (!row) return;
    row.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.closest("tr").classList.toggle("is-open", open);
  }

  // "Load more" replaces its own row: remember the row before it, so the focus
  // can go to the first new row instead of falling back to the page.
  var beforeMore = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("more-row")) {
      beforeMore = target.previousElementSibling || target.parentNode;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("detail-slot")) {
      var button = expandButton(target);
      if (button) {
        button.dataset.loaded = "true";
        setExpanded(button, true);
      }
    }
    if (beforeMore && target && target.classList && target.classList.contains("more-row")) {
      var first = beforeMore.tagName === "TBODY" ? beforeMore.firstElementChild : beforeMore.nextElementSibling;
      while (first && !first.classList.contains("entry")) first = first.nextElementSibling;
      beforeMore = null;
      if (first) {
        var focusable = first.querySelector(".expand") || first;
        focusable.focus();
      }
    }
  });

  // --- Live tail: polls the list for entries newer than the newest one shown
  // and puts them on top. The cursor comes back in a header, so polls neither
  // repeat nor skip a row; while an entry is open the tail waits.

  var live = { on: false, timer: null, total: 0, meta: null, inFlight: false };

  function tailNotice(text) {
    var notice = document.getElementById("live-notice");
    if (notice && notice.textContent !== text) notice.textContent = text;
  }

  function pollTail() {
    var toggle = document.getElementById("live-toggle");
    var meta = document.getElementById("results-meta");
    var body = document.getElementById("entries-body");
    if (!live.on || !toggle || !meta || !body || live.inFlight) return;
    if (document.querySelector("tr.detail-row:not([hidden])")) {
      tailNotice(live.total ? plural(live.total) + " · paused while an entry is open" : "Paused while an entry is open");
      return;
    }
    if (live.meta !== meta) { live.meta = meta; live.total = 0; }
    var url = meta.dataset.tailUrl;
    url += (url.indexOf("?") >= 0 ? "&" : "?") + "since=" + encodeURIComponent(meta.dataset.tailCursor);
    live.inFlight = true;
    live.pendingMeta = meta;
    window.htmx.ajax("GET", url, { source: toggle, target: "#entries-body", swap: "afterbegin" });
  }

  function plural(n) {
    return n + (n === 1 ? " new entry" : " new entries");
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.elt || event.detail.elt.id !== "live-toggle") return;
    live.inFlight = false;
    var meta = live.pendingMeta;
    var xhr = event.detail.xhr;
    if (!meta || !document.contains(meta) || !xhr || (xhr.status !== 200 && xhr.status !== 204)) return;
    var cursor = xhr.getResponseHeader("X-Tail-Cursor");
    var count = parseInt(xhr.getResponseHeader("X-Tail-Count") || "0", 10);
    if (cursor) meta.dataset.tailCursor = cursor;
    if (count > 0) {
      live.total += count;
      var wrap = document.querySelector("#results .table-wrap");
      if (wrap) wrap.hidden = false;
      var empty = document.querySelector("#results .empty");
      if (empty) empty.hidden = true;
    }
    tailNotice(live.total ? plural(live.total) : "Live: watching for new entries");
  });

  function setLive(on) {
    var toggle = document.getElementById("live-toggle");
    live.on = on;
    if (live.timer) { clearInterval(live.timer); live.timer = null; }
    if (toggle) toggle.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      live.total = 0;
      live.meta = document.getElementById("results-meta");
      tailNotice("Live: watching for new entries");
      var ms = parseInt((toggle && toggle.dataset.intervalMs) || "5000", 10);
      live.timer = setInterval(pollTail, Math.max(ms, 200));
      pollTail();
    } else {
      tailNotice("");
    }
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("#live-toggle");
    if (toggle) setLive(toggle.getAttribute("aria-pressed") !== "true");
  });

  function init() {
    initBox();
    var toggle = document.getElementById("live-toggle");
    if (toggle) toggle.hidden = false;
    if (live.on) setLive(false);
  }
  document.addEventListener("DOMContentLoaded", init);
  // Back/Forward: htmx puts the server's page for that URL back (no history
  // cache), so every control shows what the URL says; wire it up again.
  document.addEventListener("htmx:historyRestore", init);

  // The Dashboard tenant picker switches as soon as a tenant is chosen.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.requestSubmit();
  });
})();
