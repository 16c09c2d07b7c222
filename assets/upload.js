/* svdscope: file uploads (model files, datasets) without base64 through a callback.
 *
 * Every element with class "upload-control" and a data-upload-url gets a plain
 * <input type="file"> (Dash has no html.Input) with the id in its data-input-id. On change,
 * the File itself is POSTed as the request body to data-upload-url (the server streams it
 * to disk and enforces the size limit), with the value of the text field named by
 * data-labels-input (a dataset's label column) in the X-Labels header; the JSON answer is
 * then written into the dcc.Store named by data-store-id with
 * dash_clientside.set_props, which triggers the callbacks that refresh the pickers and show
 * the status. The ids come from app/ids.py through those attributes. Nothing is computed
 * here.
 */
(function () {
  "use strict";

  function publish(storeId, data) {
    data.t = Date.now();
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(storeId, { data: data });
    }
  }

  function humanBytes(n) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function labelsOf(control) {
    var id = control.dataset.labelsInput;
    var field = id ? document.getElementById(id) : null;
    return field && field.value ? field.value.trim() : "";
  }

  function upload(input, control) {
    var file = input.files && input.files[0];
    var storeId = control.dataset.storeId;
    if (!file || !storeId) { return; }
    var limit = Number(control.dataset.maxBytes || 0);
    if (limit && file.size > limit) {
      publish(storeId, { ok: false, status: "error", name: file.name,
        message: "'" + file.name + "' (" + humanBytes(file.size) + ") is larger than the " +
          "upload limit of " + humanBytes(limit) + "; " +
          (control.dataset.tooBig || "open it from the command line instead") + "." });
      input.value = "";
      return;
    }
    publish(storeId, { status: "uploading", name: file.name + " (" + humanBytes(file.size) + ")" });
    input.disabled = true;
    var headers = {
      "Content-Type": "application/octet-stream",
      "X-Svdscope-Client": "page",
      "X-Filename": encodeURIComponent(file.name)
    };
    var labels = labelsOf(control);
    if (labels) { headers["X-Labels"] = encodeURIComponent(labels); }
    fetch(control.dataset.uploadUrl, {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: headers
    })
      .then(function (response) {
        return response.json().catch(function () {
          return { ok: false, message: "The server answered " + response.status + " " +
            response.statusText + " without a message." };
        });
      })
      .then(function (answer) {
        answer.name = answer.name || file.name;
        answer.status = answer.ok ? "done" : "error";
        publish(storeId, answer);
      })
      .catch(function (err) {
        publish(storeId, { ok: false, status: "error", name: file.name,
          message: "The upload of '" + file.name + "' did not reach the server (" +
            err.message + ")." });
      })
      .finally(function () {
        input.disabled = false;
        input.value = "";
      });
  }

  function ensureInputs() {
    var controls = document.querySelectorAll(".upload-control[data-upload-url]");
    Array.prototype.forEach.call(controls, function (control) {
      var inputId = control.dataset.inputId;
      if (!inputId || document.getElementById(inputId)) { return; }
      var input = document.createElement("input");
      input.type = "file";
      input.id = inputId;
      input.accept = control.dataset.accept || "";
      input.setAttribute("aria-label", control.dataset.label || "Open a file");
      input.addEventListener("change", function () { upload(input, control); });
      control.appendChild(input);
    });
  }

  new MutationObserver(ensureInputs).observe(document.documentElement,
    { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", ensureInputs);
})();
