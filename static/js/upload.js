// Resumable uploads into an order folder with tus-js-client: drag and drop or
// file picker, a progress bar per file and overall, speed and time left.
// An upload interrupted by a dropped connection, a sleeping laptop or a reload
// continues from the bytes the server already has (tus fingerprints in
// localStorage; after a reload the same file is chosen again).
//
// Every upload area on the page is set up once (also those htmx swaps in later, such as
// the attachment area of the message form). An area with data-attach-form puts the key
// of each upload it starts into that form as <input name="upload">, so the message sent
// with the form is linked to the files.
(function () {
  "use strict";

  const FINAL_STATES = ["clean", "rejected", "too_large", "deleted"];

  function setUp(root) {
    if (root.dataset.uploadSetUp || !window.tus || !tus.isSupported) {
      return;
    }
    root.dataset.uploadSetUp = "1";
    const attachForm = root.dataset.attachForm ? document.getElementById(root.dataset.attachForm) : null;
    const input = root.querySelector("input[type=file]");
    const dropzone = root.querySelector(".dropzone");
    const list = root.querySelector(".upload-list");
    const overall = root.querySelector(".upload-overall");
    const overallBar = overall.querySelector("progress");
    const overallText = overall.querySelector(".upload-overall-text");
    const text = root.dataset;
    const maxBytes = Number(text.maxBytes);
    const chunkBytes = Number(text.chunkBytes);
    const csrfToken = text.csrfToken;
    // Extensions whose type the shop does not accept, with the server's own message: such a
    // file is refused before a byte is sent. The server checks names and content anyway.
    const refusedExtensions = JSON.parse(text.refusedExtensions || "{}");
    const language = document.documentElement.lang || "de";
    const numbers = new Intl.NumberFormat(language, { maximumFractionDigits: 1 });
    const items = [];

    function humanSize(bytes) {
      const units = ["B", "KB", "MB", "GB", "TB"];
      let value = bytes;
      let unit = 0;
      while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit += 1;
      }
      return (unit === 0 ? String(value) : numbers.format(value)) + " " + units[unit];
    }

    function humanDuration(seconds) {
      if (!isFinite(seconds) || seconds < 0) {
        return "";
      }
      if (seconds < 60) {
        return text.msgSeconds.replace("{n}", Math.max(1, Math.round(seconds)));
      }
      if (seconds < 3600) {
        return text.msgMinutes.replace("{n}", Math.round(seconds / 60));
      }
      return text.msgHours.replace("{n}", numbers.format(seconds / 3600));
    }

    // Bytes per second over the last few seconds, so the estimate follows the line.
    function Rate() {
      this.samples = [];
    }
    Rate.prototype.add = function (bytes) {
      const now = performance.now();
      this.samples.push([now, bytes]);
      while (this.samples.length > 2 && now - this.samples[0][0] > 5000) {
        this.samples.shift();
      }
    };
    Rate.prototype.perSecond = function () {
      if (this.samples.length < 2) {
        return 0;
      }
      const first = this.samples[0];
      const last = this.samples[this.samples.length - 1];
      const seconds = (last[0] - first[0]) / 1000;
      return seconds > 0 ? (last[1] - first[1]) / seconds : 0;
    };

    const overallRate = new Rate();

    function renderOverall() {
      const active = items.filter(function (item) { return !item.failed; });
      const total = active.reduce(function (sum, item) { return sum + item.file.size; }, 0);
      const sent = active.reduce(function (sum, item) { return sum + item.sent; }, 0);
      const done = active.filter(function (item) { return item.done; }).length;
      overall.hidden = items.length === 0;
      overallBar.max = total || 1;
      overallBar.value = sent;
      overallRate.add(sent);
      const speed = overallRate.perSecond();
      const parts = [
        text.msgFilesDone.replace("{done}", done).replace("{total}", active.length),
        humanSize(sent) + " / " + humanSize(total),
      ];
      if (done < active.length && speed > 0) {
        parts.push(humanSize(speed) + "/s");
        parts.push(text.msgLeft.replace("{time}", humanDuration((total - sent) / speed)));
      }
      overallText.textContent = parts.join(" · ");
    }

    function addRow(file) {
      const row = document.createElement("li");
      row.className = "upload-item";
      const name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = file.size || 1;
      bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      const status = document.createElement("span");
      status.className = "upload-status";
      status.setAttribute("aria-live", "polite");
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "button small";
      cancel.textContent = text.msgCancel;
      row.append(name, bar, status, cancel);
      list.appendChild(row);
      return { row: row, bar: bar, status: status, cancel: cancel };
    }

    function refuse(file, message) {
      const view = addRow(file);
      view.row.classList.add("upload-failed");
      view.bar.remove();
      view.cancel.remove();
      view.status.textContent = message;
    }

    function serverMessage(error) {
      const response = error && error.originalResponse;
      if (response) {
        try {
          const body = JSON.parse(response.getBody());
          if (body && body.error) {
            return body.error;
          }
        } catch (ignored) {
          // not JSON: fall through to the generic message
        }
      }
      return text.msgFailed;
    }

    function attach(upload) {
      if (!attachForm || !upload.url) {
        return null;
      }
      const field = document.createElement("input");
      field.type = "hidden";
      field.name = "upload";
      field.value = upload.url.split("/").pop();
      attachForm.appendChild(field);
      return field;
    }

    function refusedByName(name) {
      const dot = name.lastIndexOf(".");
      const extension = dot > 0 ? name.slice(dot).toLowerCase() : "";
      return Object.prototype.hasOwnProperty.call(refusedExtensions, extension)
        ? refusedExtensions[extension]
        : "";
    }

    function start(file) {
      const refusal = refusedByName(file.name);
      if (refusal) {
        refuse(file, refusal);
        return;
      }
      if (file.size === 0) {
        refuse(file, text.msgEmpty);
        return;
      }
      if (file.size > maxBytes) {
        refuse(file, text.msgTooLarge.replace("{limit}", humanSize(maxBytes)));
        return;
      }
      const view = addRow(file);
      const item = {
        file: file, sent: 0, done: false, failed: false, rate: new Rate(), view: view, fileId: null,
      };
      items.push(item);
      const upload = new tus.Upload(file, {
        endpoint: text.endpoint,
        chunkSize: chunkBytes,
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000, 60000, 60000],
        removeFingerprintOnSuccess: true,
        storeFingerprintForResuming: true,
        metadata: { filename: file.name, filetype: file.type || "application/octet-stream" },
        headers: { "X-CSRFToken": csrfToken },
        onShouldRetry: function (error) {
          const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
          // 4xx are answers about the file itself (too large, not allowed): retrying cannot help.
          return status === 0 || status === 409 || status === 423 || status >= 500;
        },
        onAfterResponse: function (request, response) {
          // The file's row in the list below, so this line can follow its state.
          const id = response.getHeader("Upload-File-Id");
          if (id) {
            item.fileId = id;
          }
        },
        onUploadUrlAvailable: function () {
          // The file now exists on the server: the list shows it and polls until scanned.
          item.field = attach(upload);
          htmx.trigger(document.body, "refresh");
        },
        onProgress: function (sent, total) {
          item.sent = sent;
          item.rate.add(sent);
          view.bar.value = sent;
          const speed = item.rate.perSecond();
          const parts = [numbers.format((100 * sent) / (total || 1)) + " %"];
          if (speed > 0 && sent < total) {
            parts.push(humanSize(speed) + "/s");
            parts.push(text.msgLeft.replace("{time}", humanDuration((total - sent) / speed)));
          }
          view.status.textContent = parts.join(" · ");
          renderOverall();
        },
        onSuccess: function () {
          item.done = true;
          item.sent = file.size;
          view.bar.value = view.bar.max;
          view.status.textContent = text.msgReceived;
          view.cancel.remove();
          view.row.classList.add("upload-done");
          renderOverall();
          followFileList();
          htmx.trigger(document.body, "refresh");
        },
        onError: function (error) {
          item.failed = true;
          view.row.classList.add("upload-failed");
          view.status.textContent = serverMessage(error);
          view.cancel.remove();
          renderOverall();
          htmx.trigger(document.body, "refresh");
        },
      });
      view.cancel.addEventListener("click", function () {
        upload.abort(true).finally(function () {
          if (item.field) {
            item.field.remove();
          }
          item.failed = true;
          view.status.textContent = text.msgCancelled;
          view.cancel.remove();
          renderOverall();
          htmx.trigger(document.body, "refresh");
        });
      });
      upload.findPreviousUploads().then(function (previous) {
        if (previous.length > 0) {
          view.status.textContent = text.msgResuming;
          upload.resumeFromPreviousUpload(previous[0]);
        }
        upload.start();
      });
    }

    // Once received, a file's line says what the list says about it (virus scan running,
    // clean, rejected …) instead of "received", until the scan is over.
    function followFileList() {
      items.forEach(function (item) {
        if (!item.done || !item.fileId) {
          return;
        }
        const row = document.getElementById("file-" + item.fileId);
        const badge = row && row.querySelector(".badge");
        if (!badge) {
          return;
        }
        item.view.status.textContent = badge.textContent.trim();
        item.view.row.dataset.state = row.dataset.state;
        if (FINAL_STATES.indexOf(row.dataset.state) !== -1) {
          item.view.row.classList.add("upload-settled");
        }
      });
    }
    document.body.addEventListener("htmx:afterSettle", followFileList);

    function startAll(files) {
      Array.prototype.forEach.call(files, start);
      renderOverall();
    }

    root.querySelector(".choose-files").addEventListener("click", function () {
      input.click();
    });
    input.addEventListener("change", function () {
      startAll(input.files);
      input.value = "";
    });
    ["dragenter", "dragover"].forEach(function (name) {
      dropzone.addEventListener(name, function (event) {
        event.preventDefault();
        dropzone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      dropzone.addEventListener(name, function (event) {
        event.preventDefault();
        dropzone.classList.remove("dragging");
      });
    });
    dropzone.addEventListener("drop", function (event) {
      if (event.dataTransfer && event.dataTransfer.files.length) {
        startAll(event.dataTransfer.files);
      }
    });
    window.addEventListener("beforeunload", function (event) {
      if (items.some(function (item) { return !item.done && !item.failed; })) {
        event.preventDefault();
      }
    });
    root.classList.add("upload-ready");
  }

  function setUpWithin(element) {
    if (element.matches && element.matches("section.upload[data-endpoint]")) {
      setUp(element);
    }
    if (element.querySelectorAll) {
      element.querySelectorAll("section.upload[data-endpoint]").forEach(setUp);
    }
  }

  setUpWithin(document);
  document.addEventListener("htmx:load", function (event) {
    setUpWithin(event.target);
  });
})();
