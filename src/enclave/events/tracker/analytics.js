/*! Enclave analytics 1.0.0: the tracking spec's page, track and identify calls from a
 * web page to the Enclave that serves this file (docs/sdks.md, "Website tracking").
 *
 *   enclave.load({writeKey: "<browser key>", requireConsent: true});
 *   enclave.page();                        // the page's path, title, referrer, UTM tags
 *   enclave.track("Signed up", {plan: "pro"});
 *   enclave.identify("user-42");           // links this visitor to the person user-42
 *   enclave.consent(true);                 // the visitor agreed: queued calls go out
 *
 * Nothing is stored or sent before load(), nor, with requireConsent, before
 * consent(true). The key travels in the body as text/plain, so no CORS preflight.
 */
(function (window, document) {
  "use strict";
  var VERSION = "1.0.0";
  var PREFIX = "enclave_ajs_";
  var MAX_WAITING = 100;
  var MAX_ATTEMPTS = 4;
  var script = document.currentScript;
  var ownOrigin = script && script.src ? new URL(script.src).origin : "";
  var options = null;
  var consent = null; // null: not asked; true / false: the visitor's answer
  var waiting = [];
  var ids = {anonymousId: null, userId: null};

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // Storage is neither read nor written without leave: before consent when it is
  // required, and never after the visitor refused.
  function mayStore() {
    return options && consent !== false && (!options.requireConsent || consent === true);
  }

  function read(name) {
    if (!mayStore()) { return null; }
    try { return window.localStorage.getItem(PREFIX + name); } catch (e) { return null; }
  }

  function restore() {
    ids.anonymousId = read("anonymous_id") || ids.anonymousId || uuid();
    ids.userId = read("user_id") || ids.userId;
  }

  function write(name, value) {
    if (!mayStore()) { return; }
    try {
      if (value === null) { window.localStorage.removeItem(PREFIX + name); }
      else { window.localStorage.setItem(PREFIX + name, value); }
    } catch (e) { /* storage blocked: the ids live as long as the page */ }
  }

  function persist() {
    write("anonymous_id", ids.anonymousId);
    write("user_id", ids.userId);
  }

  function campaign() {
    var out = {}, found = false;
    new URLSearchParams(window.location.search).forEach(function (value, key) {
      if (key.indexOf("utm_") === 0 && value) {
        var name = key.slice(4) === "campaign" ? "name" : key.slice(4);
        out[name] = value.slice(0, 200);
        found = true;
      }
    });
    return found ? out : null;
  }

  function pageProperties() {
    // Never the #fragment: sign-in flows put tokens there.
    var url = window.location.href.split("#")[0];
    var referrer = document.referrer.split("#")[0];
    return {path: window.location.pathname, referrer: referrer,
            search: window.location.search, title: document.title, url: url};
  }

  function context() {
    var out = {library: {name: "enclave-analytics", version: VERSION},
               page: pageProperties(), userAgent: window.navigator.userAgent,
               locale: window.navigator.language};
    var utm = campaign();
    if (utm) { out.campaign = utm; }
    if (consent === true) { out.consent = {categoryPreferences: {analytics: true}}; }
    return out;
  }

  function post(call, message, attempt) {
    message.sentAt = new Date().toISOString();
    window.fetch(options.host + "/api/ingest/v1/" + call, {
      method: "POST", mode: "cors", credentials: "omit", keepalive: true,
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify(message)
    }).then(function (response) {
      // The spec's clients retry 5xx and 429 only: any other answer is final.
      if (response.status >= 500 || response.status === 429) { retry(call, message, attempt, response); }
    }, function () { retry(call, message, attempt, null); });
  }

  function retry(call, message, attempt, response) {
    if (attempt + 1 >= MAX_ATTEMPTS) { return; }
    var after = response && parseInt(response.headers.get("Retry-After"), 10);
    var wait = after > 0 ? Math.min(after, 60) * 1000 : Math.pow(2, attempt) * 1000;
    window.setTimeout(function () { post(call, message, attempt + 1); }, wait);
  }

  function send(call, fields) {
    if (!options || consent === false) { return; }  // a visitor who refused: nothing goes
    if (options.requireConsent && consent !== true) {
      if (consent === null && waiting.length < MAX_WAITING) { waiting.push([call, fields]); }
      return;
    }
    var message = {type: call, messageId: "ajs-" + uuid(), anonymousId: ids.anonymousId,
                   timestamp: new Date().toISOString(), context: context(),
                   writeKey: options.writeKey};
    if (ids.userId) { message.userId = ids.userId; }
    for (var name in fields) { if (fields[name] !== undefined) { message[name] = fields[name]; } }
    post(call, message, 0);
  }

  var enclave = {
    VERSION: VERSION,
    load: function (settings) {
      if (options || !settings || !settings.writeKey) { return enclave; }
      options = {writeKey: String(settings.writeKey),
                 host: String(settings.host || ownOrigin).replace(/\/+$/, ""),
                 requireConsent: settings.requireConsent === true};
      restore();
      persist();
      return enclave;
    },
    page: function (name, properties) {
      if (typeof name === "object" && name !== null) { properties = name; name = undefined; }
      var props = pageProperties();
      for (var key in (properties || {})) { props[key] = properties[key]; }
      send("page", {name: name ? String(name) : undefined, properties: props});
    },
    track: function (event, properties) {
      if (!event) { return; }
      send("track", {event: String(event), properties: properties || {}});
    },
    identify: function (userId, traits) {
      if (typeof userId === "object" && userId !== null) { traits = userId; userId = null; }
      if (userId !== null && userId !== undefined && String(userId)) {
        ids.userId = String(userId);
        persist();
      }
      send("identify", {traits: traits || {}});
    },
    consent: function (granted) {
      consent = granted === true;
      var queued = waiting;
      waiting = [];
      if (consent) {
        restore();
        persist();
        queued.forEach(function (call) { send(call[0], call[1]); });
      } else {
        try {  // a visitor who withdraws leaves no id behind
          window.localStorage.removeItem(PREFIX + "anonymous_id");
          window.localStorage.removeItem(PREFIX + "user_id");
        } catch (e) { /* storage blocked: nothing was kept */ }
      }
    },
    reset: function () {
      ids.userId = null;
      ids.anonymousId = uuid();
      persist();
    },
    anonymousId: function () { return ids.anonymousId; },
    user: function () { return ids.userId; }
  };
  window.enclave = enclave;
})(window, document);
