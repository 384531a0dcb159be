// The explorer's item browser and flipped-items list. Data comes only from the JSON block; every element is
// built with createElement and every text set with textContent (never innerHTML), so a model's output
// stays text whatever it contains.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  var RUNS = DATA.runs, ITEMS = DATA.items, PAGE = 100;
  var LABELS = { correct: "correct", wrong: "wrong", unparsed: "unparsed" };

  function el(tag, className, children) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function text(value) { return value === null || value === undefined ? "—" : String(value); }
  function pct(value) { return value === null || value === undefined ? "—" : (100 * value).toFixed(1) + "%"; }
  function clip(value, most) { value = text(value).replace(/\s+/g, " "); return value.length > most ? value.slice(0, most - 1) + "…" : value; }

  // Text with each case-insensitive occurrence of `query` wrapped in <mark>, built as text nodes.
  function marked(tag, className, value, query) {
    var node = el(tag, className), source = text(value);
    if (!query) { node.textContent = source; return node; }
    var lower = source.toLowerCase(), at = 0, found;
    while ((found = lower.indexOf(query, at)) >= 0) {
      node.appendChild(document.createTextNode(source.slice(at, found)));
      node.appendChild(el("mark", null, [source.slice(found, found + query.length)]));
      at = found + query.length;
    }
    node.appendChild(document.createTextNode(source.slice(at)));
    return node;
  }

  function badge(status) { return el("span", "badge " + status, [LABELS[status] || status]); }
  function pair(name, value) { return [el("dt", null, [name]), value]; }

  function searchText(item) {
    if (item._search === undefined) {
      var parts = [item.id, item.question, item.gold, item.answer, item.error];
      (item.steps || []).forEach(function (step) { (step.outputs || []).forEach(function (o) { parts.push(o); }); });
      (item.samples || []).forEach(function (s) { parts.push(s); });
      item._search = parts.map(text).join("\n").toLowerCase();
    }
    return item._search;
  }

  function stepsTable(item) {
    var rows = item.gold_steps.map(function (gold, i) {
      var pred = item.pred_steps[i];
      var wrong = item.first_wrong !== null && i >= item.first_wrong && (pred === null || pred === undefined || String(pred) !== String(gold));
      var row = el("tr", i === item.first_wrong ? "first-wrong" : (wrong ? "miss" : ""),
        [el("td", null, [String(i + 1)]), el("td", null, [text(gold)]), el("td", null, [pred === null || pred === undefined ? "(not found)" : String(pred)])]);
      return row;
    });
    var head = el("tr", null, [el("th", null, ["step"]), el("th", null, ["gold"]), el("th", null, ["predicted"])]);
    return el("table", "steps-table", [el("thead", null, [head]), el("tbody", null, rows)]);
  }

  function stepView(step, index, query, open) {
    var tokens = (step.prompt_tokens || 0) + " + " + (step.completion_tokens || 0) + " tokens";
    var flags = [step.kind, tokens];
    if (step.finish_reasons && step.finish_reasons.length) flags.push(step.finish_reasons.join(", "));
    if (step.cached) flags.push("from cache");
    if (step.branch !== null && step.branch !== undefined) flags.push("branch " + step.branch);
    var head = el("summary", null, [el("span", "step-name", [(index + 1) + ". " + text(step.step)]), el("span", "flags", [flags.join(" · ")])]);
    if (step.error) head.appendChild(el("span", "badge unparsed", ["error"]));
    var hasText = step.prompt !== null && step.prompt !== undefined || (step.outputs || []).length;
    var node = el("details", "step" + (hasText ? "" : " compute"), [head]);
    if (step.prompt !== null && step.prompt !== undefined) {
      node.appendChild(el("div", "label", ["prompt"]));
      node.appendChild(marked("pre", "prompt", step.prompt, null));
    }
    (step.outputs || []).forEach(function (output, i) {
      node.appendChild(el("div", "label", [step.outputs.length > 1 ? "output " + (i + 1) : "output"]));
      node.appendChild(marked("pre", "output", output, query));
    });
    var outputs = step.outputs || [];
    var repeated = outputs.length === 1 && step.parsed === outputs[0];
    if (step.parsed !== null && step.parsed !== undefined && !repeated) {
      node.appendChild(el("div", "label", ["parsed"]));
      node.appendChild(el("pre", "parsed", [typeof step.parsed === "string" ? step.parsed : JSON.stringify(step.parsed, null, 1)]));
    }
    if (step.tool_calls && step.tool_calls.length) {
      node.appendChild(el("div", "label", ["calculations"]));
      node.appendChild(el("pre", "parsed", [step.tool_calls.map(function (c) { return text(c.expression) + " = " + text(c.value); }).join("\n")]));
    }
    if (step.error) node.appendChild(el("p", "warning", [step.error]));
    if (open && hasText) node.open = true;
    return node;
  }

  function itemBody(item, query) {
    var run = RUNS[item.run], facts = el("dl", "facts");
    var rows = [pair("question", marked("dd", "question", item.question, query)), pair("gold", el("dd", null, [text(item.gold)])),
      pair("answer", el("dd", null, [marked("span", null, item.answer, query), " ", badge(item.status)]))];
    if (RUNS.length > 1) rows.push(pair("run", el("dd", null, [run.label + " (" + run.series + ")"])));
    if (item.depth !== null) rows.push(pair("depth", el("dd", null, [String(item.depth)])));
    Object.keys(item.extractions || {}).forEach(function (name) {
      var part = item.extractions[name];
      rows.push(pair("extraction " + name, el("dd", null, [text(part.answer) + (part.correct ? "  ✓" : "  ✗")])));
    });
    rows.push(pair("tokens", el("dd", null, [item.prompt_tokens + " prompt, " + item.completion_tokens + " completion"])));
    if (item.error) rows.push(pair("error", el("dd", "warning", [item.error])));
    rows.forEach(function (r) { facts.appendChild(r[0]); facts.appendChild(r[1]); });
    var body = el("div", "item-body", [facts]);
    if (item.has_steps) {
      body.appendChild(el("h4", null, ["Intermediate results" + (item.first_wrong === null ? ": all right" : ": first wrong at step " + (item.first_wrong + 1))]));
      body.appendChild(stepsTable(item));
    }
    if (item.samples) {
      body.appendChild(el("h4", null, ["Samples"]));
      body.appendChild(el("ol", "samples", item.samples.map(function (s, i) {
        return el("li", item.samples_correct && item.samples_correct[i] ? "right" : "miss", [text(s)]);
      })));
    }
    var steps = item.steps || [];
    var withText = steps.filter(function (s) { return s.prompt !== null && s.prompt !== undefined; }).length;
    var toggle = el("button", "small", ["open all steps"]);
    body.appendChild(el("h4", null, ["Steps (" + steps.length + ") ", toggle]));
    var list = el("div", "steps", steps.map(function (step, i) { return stepView(step, i, query, withText <= 2); }));
    toggle.addEventListener("click", function () {
      var opening = toggle.textContent === "open all steps";
      list.querySelectorAll("details.step:not(.compute)").forEach(function (d) { d.open = opening; });
      toggle.textContent = opening ? "close all steps" : "open all steps";
    });
    body.appendChild(list);
    return body;
  }

  // A collapsible item whose body is built the first time it is opened.
  function itemView(item, query, className, summaryParts) {
    var summary = el("summary", null, summaryParts);
    var node = el("details", className, [summary]);
    node.dataset.id = item.id;
    node.dataset.run = String(item.run);
    node.dataset.status = item.status;
    node.addEventListener("toggle", function () {
      if (node.open && !node._built) { node._built = true; node.appendChild(itemBody(item, query)); }
    });
    return node;
  }

  function itemSummary(item) {
    var parts = [badge(item.status), el("span", "item-id", [item.id])];
    if (RUNS.length > 1) parts.push(el("span", "tag", [RUNS[item.run].label]));
    if (item.first_wrong !== null) parts.push(el("span", "tag warn", ["first wrong: step " + (item.first_wrong + 1)]));
    parts.push(el("span", "q", [clip(item.question, 150)]));
    parts.push(el("span", "ga", ["gold " + clip(item.gold, 30) + " · answer " + clip(item.answer, 30)]));
    return parts;
  }

  function option(value, label) { var o = el("option", null, [label]); o.value = value; return o; }

  function buildBrowser(root) {
    var state = { run: "all", status: "all", depth: "all", first: "all", query: "", limit: PAGE };
    var controls = el("div", "controls"), statusBar = el("div", "segmented"), buttons = {};
    if (RUNS.length > 1) {
      var runSelect = el("select", null, [option("all", "all runs")].concat(RUNS.map(function (r, i) { return option(String(i), r.label); })));
      runSelect.id = "run-filter";
      runSelect.addEventListener("change", function () { state.run = runSelect.value; state.limit = PAGE; render(); });
      controls.appendChild(el("label", null, ["run ", runSelect]));
    }
    ["all", "correct", "wrong", "unparsed"].forEach(function (status) {
      var b = el("button", status === "all" ? "on" : "", [status]);
      b.dataset.status = status;
      b.addEventListener("click", function () { state.status = status; state.limit = PAGE; render(); });
      buttons[status] = b;
      statusBar.appendChild(b);
    });
    controls.appendChild(statusBar);
    var depths = DATA.depths;
    if (depths.length > 1) {
      var depthSelect = el("select", null, [option("all", "all depths")].concat(depths.map(function (d) { return option(String(d), "depth " + d); })));
      depthSelect.id = "depth-filter";
      depthSelect.addEventListener("change", function () { state.depth = depthSelect.value; state.limit = PAGE; render(); });
      controls.appendChild(el("label", null, ["depth ", depthSelect]));
    }
    var firsts = {};
    ITEMS.forEach(function (item) { if (item.has_steps && item.first_wrong !== null) firsts[item.first_wrong] = true; });
    if (ITEMS.some(function (item) { return item.has_steps; })) {
      var steps = Object.keys(firsts).map(Number).sort(function (a, b) { return a - b; });
      var firstSelect = el("select", null, [option("all", "any"), option("none", "none (all steps right)")].concat(
        steps.map(function (s) { return option(String(s), "step " + (s + 1)); })));
      firstSelect.id = "first-wrong-filter";
      firstSelect.addEventListener("change", function () { state.first = firstSelect.value; state.limit = PAGE; render(); });
      controls.appendChild(el("label", null, ["first wrong step ", firstSelect]));
    }
    var search = el("input", "search");
    search.type = "search";
    search.id = "item-search";
    search.placeholder = "search question, answer, outputs  ( / )";
    search.addEventListener("input", function () { state.query = search.value.trim().toLowerCase(); state.limit = PAGE; render(); });
    controls.appendChild(search);
    document.addEventListener("keydown", function (e) {
      if (e.key === "/" && document.activeElement.tagName !== "INPUT") { e.preventDefault(); search.focus(); }
    });
    var count = el("p", "count"), list = el("div", "item-list"), more = el("button", "more", ["show more"]);
    count.id = "item-count";
    list.id = "item-list";
    more.addEventListener("click", function () { state.limit += PAGE; render(); });
    root.appendChild(controls);
    root.appendChild(count);
    root.appendChild(list);
    root.appendChild(more);

    function passes(item, ignoreStatus) {
      if (state.run !== "all" && String(item.run) !== state.run) return false;
      if (!ignoreStatus && state.status !== "all" && item.status !== state.status) return false;
      if (state.depth !== "all" && String(item.depth) !== state.depth) return false;
      if (state.first === "none" && !(item.has_steps && item.first_wrong === null)) return false;
      if (state.first !== "all" && state.first !== "none" && String(item.first_wrong) !== state.first) return false;
      return !state.query || searchText(item).indexOf(state.query) >= 0;
    }
    function render() {
      var counts = { all: 0, correct: 0, wrong: 0, unparsed: 0 }, shown = [];
      ITEMS.forEach(function (item) {
        if (!passes(item, true)) return;
        counts.all += 1;
        counts[item.status] += 1;
        if (state.status === "all" || item.status === state.status) shown.push(item);
      });
      Object.keys(buttons).forEach(function (s) {
        buttons[s].textContent = s + " " + counts[s];
        buttons[s].className = s === state.status ? "on" : "";
      });
      count.textContent = "showing " + Math.min(shown.length, state.limit) + " of " + shown.length + " items" +
        (shown.length !== ITEMS.length ? " (" + ITEMS.length + " in all)" : "");
      list.replaceChildren.apply(list, shown.slice(0, state.limit).map(function (item) {
        return itemView(item, state.query, "item " + item.status, itemSummary(item));
      }));
      more.hidden = shown.length <= state.limit;
    }
    render();
  }

  function buildFlips(root) {
    var comparisons = DATA.comparisons, state = { which: 0, kind: "all" };
    var controls = el("div", "controls"), list = el("div", "item-list flip-list"), buttons = {};
    list.id = "flip-list";
    if (comparisons.length > 1) {
      var select = el("select", null, comparisons.map(function (c, i) {
        return option(String(i), RUNS[c.a].label + "  vs  " + RUNS[c.b].label + " (" + c.flipped.length + " flipped)");
      }));
      select.id = "comparison-select";
      select.addEventListener("change", function () { state.which = Number(select.value); render(); });
      controls.appendChild(el("label", null, ["comparison ", select]));
    }
    var bar = el("div", "segmented");
    [["all", "all flipped"], ["right_to_wrong", "right → wrong"], ["wrong_to_right", "wrong → right"]].forEach(function (k) {
      var b = el("button", "", [k[1]]);
      b.dataset.flip = k[0];
      b.addEventListener("click", function () { state.kind = k[0]; render(); });
      buttons[k[0]] = [b, k[1]];
      bar.appendChild(b);
    });
    controls.appendChild(bar);
    var note = el("p", "count");
    note.id = "flip-count";
    root.appendChild(controls);
    root.appendChild(note);
    root.appendChild(list);

    function render() {
      var c = comparisons[state.which], a = RUNS[c.a], b = RUNS[c.b];
      var counts = { all: c.flipped.length, right_to_wrong: c.mcnemar.b01, wrong_to_right: c.mcnemar.b10 };
      Object.keys(buttons).forEach(function (k) {
        buttons[k][0].textContent = buttons[k][1] + " " + counts[k];
        buttons[k][0].className = k === state.kind ? "on" : "";
      });
      var shown = c.flipped.filter(function (f) { return state.kind === "all" || f.kind === state.kind; });
      note.textContent = "A = " + a.label + ", B = " + b.label + ": " + shown.length + " of " + c.shared + " shared items" +
        (shown.length ? "" : " (no item flipped this way)");
      list.replaceChildren.apply(list, shown.map(function (f) {
        var itemA = ITEMS[f.a], itemB = ITEMS[f.b];
        var parts = [el("span", "badge " + (f.kind === "right_to_wrong" ? "wrong" : "correct"), [f.kind === "right_to_wrong" ? "right → wrong" : "wrong → right"]),
          el("span", "item-id", [f.id]), el("span", "q", [clip(itemA.question, 120)]),
          el("span", "ga", ["gold " + clip(itemA.gold, 20) + " · A " + clip(itemA.answer, 20) + " · B " + clip(itemB.answer, 20)])];
        var node = el("details", "item flip " + f.kind, [el("summary", null, parts)]);
        node.dataset.id = f.id;
        node.dataset.kind = f.kind;
        node.addEventListener("toggle", function () {
          if (!node.open || node._built) return;
          node._built = true;
          node.appendChild(el("div", "side-by-side", [
            el("div", null, [el("h4", null, ["A: " + a.label]), itemBody(itemA, "")]),
            el("div", null, [el("h4", null, ["B: " + b.label]), itemBody(itemB, "")])]));
        });
        return node;
      }));
    }
    render();
  }

  // Links to a run's section open it (the sections are collapsible).
  function openRun(hash) {
    var target = hash && document.getElementById(hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", function () { openRun(location.hash); });
  openRun(location.hash);

  buildBrowser(document.getElementById("browser"));
  if (DATA.comparisons.length) buildFlips(document.getElementById("flips"));
})();
