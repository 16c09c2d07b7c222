/* svdscope: model-file upload without base64 through a callback.
 *
 * A plain <input type="file"> is put into #div-upload-control (Dash has no html.Input).
 * On change, the File itself is POSTed as the request body to the URL in the control's
 * data-upload-url (the server streams it to disk and enforces the size limit), then the
 * JSON answer is written into the dcc.Store #store-upload-event with
 * dash_clientside.set_props, which triggers the callbacks that refresh the model picker
 * and show the status. Ids repeat app/ids.py. Nothing is computed here.
 */
(function () {
  "use strict";
  var CONTROL_ID = "div-upload-control";
  var INPUT_ID = "input-upload-file";
  var STORE_ID = "store-upload-event";

  function publish(data) {
    data.t = Date.now();
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(STORE_ID, { data: data });
    }
  }

  function humanBytes(n) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function upload(input, control) {
    var file = input.files && input.files[0];
    if (!file) { return; }
    var limit = Number(control.dataset.maxBytes || 0);
    if (limit && file.size > limit) {
      publish({ ok: false, status: "error", name: file.name,
        message: "'" + file.name + "' (" + humanBytes(file.size) + ") is larger than the " +
          "upload limit of " + humanBytes(limit) + "; open it from the command line " +
          "(svdscope serve PATH) instead." });
      input.value = "";
      return;
    }
    publish({ status: "uploading", name: file.name + " (" + humanBytes(file.size) + ")" });
    input.disabled = true;
    fetch(control.dataset.uploadUrl, {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/octet-stream",
        "X-Svdscope-Client": "page",
        "X-Filename": encodeURIComponent(file.name)
      }
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
        publish(answer);
      })
      .catch(function (err) {
        publish({ ok: false, status: "error", name: file.name,
          message: "The upload of '" + file.name + "' did not reach the server (" +
            err.message + ")." });
      })
      .finally(function () {
        input.disabled = false;
        input.value = "";
      });
  }

  function ensureInput() {
    var control = document.getElementById(CONTROL_ID);
    if (!control || document.getElementById(INPUT_ID)) { return; }
    var input = document.createElement("input");
    input.type = "file";
    input.id = INPUT_ID;
    input.accept = control.dataset.accept || "";
    input.setAttribute("aria-label", "Open a model file");
    input.addEventListener("change", function () { upload(input, control); });
    control.appendChild(input);
  }

  new MutationObserver(ensureInput).observe(document.documentElement,
    { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", ensureInput);
})();
