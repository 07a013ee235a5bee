// A build log viewer that stays responsive with hundreds of thousands of lines: only the
// lines in view (and a few around) are in the DOM, at a fixed line height. Build steps
// (entries of type "command") start sections that fold; a phase entry ends a section.
//
// The log need not arrive in order: its last lines (the tail, what a view that follows
// the end shows first) can come before the rest. Entries held in order from the first
// are the log proper; the tail waits beside them, drawn where it belongs, and joins them
// when the entries before it arrive. Lines between the two are drawn as not yet loaded.

import { renderAnsi } from "./ansi.js";
import { h } from "./dom.js";

const OVERSCAN = 30;
const NO_SECTION = -1;

export class LogView {
  // linkFor(index) -> href of a line; onFollow(following) when follow mode changes
  // onEntries(entries, first) for entries that join the log in order (each once)
  constructor({ linkFor, onFollow, onMark, onEntries, label }) {
    this.linkFor = linkFor;
    this.onFollow = onFollow || (() => {});
    this.onMark = onMark || (() => {});
    this.onEntries = onEntries || (() => {});
    this.entries = [];  // in order from the first
    this.tail = null;  // { first, entries }: the log's end, ahead of `entries`
    this.sectionOf = new Int32Array(1024);  // entry -> its section's header entry
    this.sections = new Map();  // header entry -> { collapsed, count }
    this.current = NO_SECTION;  // the section new entries join
    this.rows = new Int32Array(1024);  // the entries shown, in order
    this.rowCount = 0;
    this.errors = [];
    this.marked = -1;
    this.pendingMark = -1;
    this.following = true;
    this.lastTop = 0;
    this.jumpedTo = -1;  // the scrollTop a jump set: its scroll event is not the user's
    this.rendered = "";
    this.drawn = { first: 0, els: [], marked: -1, offset: 0 };  // the rows in the DOM, from row `first`
    this.frame = 0;

    this.spacer = h("div", { class: "log-spacer" });
    this.window = h("div", { class: "log-window" });
    this.spacer.append(this.window);
    this.empty = h("p", { class: "log-empty" }, "No log entries yet.");
    this.el = h("div", {
      class: "log-scroll", tabindex: "0", role: "region", "aria-label": label || "Build log",
    }, this.empty, this.spacer);
    this.el.addEventListener("scroll", () => this.onScroll(), { passive: true });
    this.el.addEventListener("click", (e) => this.onClick(e));
    // a view that follows the end stays at it when the log's box changes size (the page's
    // other parts arriving after the last lines can shrink it, and no line comes to scroll)
    this.resize = new ResizeObserver(() => {
      if (this.following) this.scrollToEnd();
      this.schedule();
    });
    this.resize.observe(this.el);
  }

  get lineHeight() {
    if (!this._lineHeight) {
      const probe = h("div", { class: "log-line" }, h("span", { class: "msg" }, "0"));
      this.window.append(probe);
      this._lineHeight = probe.getBoundingClientRect().height || 20;
      probe.remove();
    }
    return this._lineHeight;
  }

  destroy() { this.resize.disconnect(); cancelAnimationFrame(this.frame); }

  // the entries loaded in order from the first; every line known (loaded or not)
  get loaded() { return this.entries.length; }
  get known() { return this.tail ? this.tail.first + this.tail.entries.length : this.entries.length; }

  // the entry of line `index`, null when not loaded yet
  entryAt(index) {
    if (index < this.entries.length) return this.entries[index];
    const tail = this.tail;
    return tail && index >= tail.first ? tail.entries[index - tail.first] ?? null : null;
  }

  // entries numbered from `first`; entries already held are skipped. Entries past the
  // end of those in order make (or extend) the tail.
  append(entries, first) {
    const before = this.entries.length;
    let index = first;
    for (const entry of entries) {
      if (index === this.entries.length) this.add(entry);
      else if (index > this.entries.length) this.addTail(entry, index);
      index += 1;
    }
    const tail = this.tail;
    if (tail && this.entries.length >= tail.first) {
      // the log reached its tail: the tail joins it (its steps and errors now known)
      this.tail = null;
      for (let i = this.entries.length - tail.first; i < tail.entries.length; i++) {
        this.add(tail.entries[i]);
      }
    }
    if (this.entries.length > before) {
      this.onEntries(this.entries.slice(before), before);
      if (this.drawnTouched(before, this.entries.length)) this.rendered = "";
    }
    if (this.pendingMark >= 0 && this.entryAt(this.pendingMark)) {
      const mark = this.pendingMark;
      this.pendingMark = -1;
      this.goTo(mark + 1);
    } else if (this.following) {
      this.scrollToEnd();
    }
    this.schedule();
  }

  add(entry) {
    const index = this.entries.length;
    this.entries.push(entry);
    if (index >= this.sectionOf.length) this.sectionOf = grow(this.sectionOf);
    if (entry.type === "command") {
      this.current = index;
      this.sections.set(index, { collapsed: false, count: 0 });
    } else if (entry.type === "phase") {
      this.current = NO_SECTION;
    }
    const section = entry.type === "command" || entry.type === "phase" ? NO_SECTION : this.current;
    this.sectionOf[index] = section;
    if (section !== NO_SECTION) this.sections.get(section).count += 1;
    if (entry.type === "error") this.errors.push(index);
    if (section === NO_SECTION || !this.sections.get(section).collapsed) this.pushRow(index);
  }

  // whether lines drawn change now that the entries from `from` to `to` joined the log:
  // they were drawn as not loaded or as tail lines (whose step was not known), or the
  // step whose header is drawn grew (its count). Lines drawn again for nothing would
  // cost a frame for each page of a long log that arrives.
  drawnTouched(from, to) {
    const { first, els } = this.drawn;
    if (!els.length) return true;
    const lo = this.indexAt(first);
    const hi = this.indexAt(first + els.length - 1);
    return (from <= hi && to > lo)
      || (this.current !== NO_SECTION && this.current >= lo && this.current <= hi);
  }

  addTail(entry, index) {
    if (!this.tail) this.tail = { first: index, entries: [] };
    // only in order after the tail's last entry: a later one would leave a hole
    if (index === this.tail.first + this.tail.entries.length) this.tail.entries.push(entry);
  }

  // rows: the log's shown rows (folded steps' lines left out), then every line after it
  // (not loaded, or the tail: nothing of them folds until they join the log)
  get totalRows() { return this.rowCount + this.known - this.entries.length; }

  indexAt(row) {
    return row < this.rowCount ? this.rows[row] : this.entries.length + row - this.rowCount;
  }

  pushRow(index) {
    if (this.rowCount >= this.rows.length) this.rows = grow(this.rows);
    this.rows[this.rowCount++] = index;
  }

  rebuildRows() {
    this.rowCount = 0;
    for (let i = 0; i < this.entries.length; i++) {
      const section = this.sectionOf[i];
      if (section === NO_SECTION || !this.sections.get(section).collapsed) this.pushRow(i);
    }
  }

  setCollapsed(header, collapsed) {
    const section = this.sections.get(header);
    if (!section || section.collapsed === collapsed) return;
    section.collapsed = collapsed;
    this.rebuildRows();
    this.rendered = "";
    this.schedule();
  }

  setAll(collapsed) {
    for (const section of this.sections.values()) section.collapsed = collapsed;
    this.rebuildRows();
    this.rendered = "";
    if (this.following) this.scrollToEnd();
    this.schedule();
  }

  rowOf(index) {
    if (index >= this.entries.length) return this.rowCount + index - this.entries.length;
    // binary search: rows are in entry order
    let lo = 0;
    let hi = this.rowCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const value = this.rows[mid];
      if (value === index) return mid;
      if (value < index) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  // marks line `line` (1-based), unfolds its step and scrolls it into view, in the log and
  // in the page (on a narrow screen the log itself may be out of view); false when the log
  // has no such line (yet: it is marked when it arrives if `wait`)
  goTo(line, { wait = false } = {}) {
    const index = line - 1;
    if (!Number.isInteger(index) || index < 0) return false;
    this.setFollowing(false);
    if (!this.entryAt(index)) {
      if (wait) this.pendingMark = index;
      return false;
    }
    const section = index < this.entries.length ? this.sectionOf[index] : NO_SECTION;
    if (section !== NO_SECTION) this.setCollapsed(section, false);
    this.marked = index;
    const row = this.rowOf(index);
    const lh = this.lineHeight;
    this.spacer.style.height = `${this.totalRows * lh}px`;
    this.el.scrollTop = Math.max(0, row * lh - this.el.clientHeight / 3);
    this.lastTop = this.el.scrollTop;
    // a line near the end scrolls the log to its end; that must not turn following back
    // on, or the next lines of a live build would carry the view away from the mark
    this.jumpedTo = this.el.scrollTop;
    this.rendered = "";
    this.render();
    this.revealInPage(index);
    this.onMark(line);
    return true;
  }

  // scrolls the page (not the log) so that the drawn line `index` is in the window
  revealInPage(index) {
    const line = this.window.querySelector(`[data-index="${index}"]`);
    if (!line) return;
    const box = line.getBoundingClientRect();
    if (box.top >= 0 && box.bottom <= window.innerHeight) return;
    window.scrollBy({ top: box.top - window.innerHeight / 3, behavior: "instant" });
  }

  firstErrorLine() { return this.errors.length ? this.errors[0] + 1 : null; }

  setFollowing(following) {
    if (this.following === following) return;
    this.following = following;
    this.onFollow(following);
  }

  follow() {
    this.setFollowing(true);
    this.scrollToEnd();
    this.schedule();
  }

  scrollToEnd() {
    this.spacer.style.height = `${this.totalRows * this.lineHeight}px`;
    this.el.scrollTop = this.el.scrollHeight;
    this.lastTop = this.el.scrollTop;
  }

  onScroll() {
    const top = this.el.scrollTop;
    if (top === this.jumpedTo) {
      this.jumpedTo = -1;
      this.lastTop = top;
      this.schedule();
      return;
    }
    this.jumpedTo = -1;
    const atEnd = top + this.el.clientHeight >= this.el.scrollHeight - this.lineHeight;
    if (atEnd) this.setFollowing(true);
    else if (top < this.lastTop) this.setFollowing(false);  // the user scrolled up
    this.lastTop = top;
    this.schedule();
  }

  onClick(event) {
    const fold = event.target.closest("button.fold");
    if (fold) {
      const header = Number(fold.closest(".log-line").dataset.index);
      this.setCollapsed(header, !this.sections.get(header).collapsed);
      return;
    }
    const link = event.target.closest("a.ln");
    if (link) {
      this.marked = Number(link.closest(".log-line").dataset.index);
      this.setFollowing(false);
      this.rendered = "";
      this.schedule();
    }
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    this.empty.hidden = this.known > 0;
    const lh = this.lineHeight;
    const rows = this.totalRows;
    this.spacer.style.height = `${rows * lh}px`;
    const top = this.el.scrollTop;
    const first = Math.max(0, Math.floor(top / lh) - OVERSCAN);
    const last = Math.min(rows, Math.ceil((top + this.el.clientHeight) / lh) + OVERSCAN);
    // rows past the log proper map to lines by its length less its folded lines
    const offset = this.rowCount - this.entries.length;
    const key = `${first}:${last}:${offset}:${this.marked}`;
    if (key === this.rendered) return;
    const again = this.rendered === "" || this.drawn.marked !== this.marked
      || this.drawn.offset !== offset;
    this.rendered = key;
    // keep keyboard focus on the same line's control across re-renders
    const focused = this.window.contains(document.activeElement) ? document.activeElement : null;
    const focusIndex = focused ? focused.closest(".log-line").dataset.index : null;
    const focusClass = focused ? focused.className : null;
    this.window.style.transform = `translateY(${first * lh}px)`;
    const drawn = this.drawn;
    const end = drawn.first + drawn.els.length;
    if (again || last <= drawn.first || first >= end) {
      // nothing drawn can stay (the lines changed, or a jump)
      const els = [];
      for (let row = first; row < last; row++) els.push(this.line(this.indexAt(row)));
      this.window.replaceChildren(...els);
      this.drawn = { first, els, marked: this.marked, offset };
    } else {
      // a scroll: the lines still in view stay in the DOM, those that came into view are
      // added at either end (a few lines a frame, not a whole screen)
      const keep = drawn.els.slice(Math.max(0, first - drawn.first),
        Math.max(0, last - drawn.first));
      for (const el of drawn.els.slice(0, Math.max(0, first - drawn.first))) el.remove();
      for (const el of drawn.els.slice(Math.max(0, last - drawn.first))) el.remove();
      const above = [];
      for (let row = first; row < drawn.first; row++) above.push(this.line(this.indexAt(row)));
      const below = [];
      for (let row = Math.max(end, first); row < last; row++) below.push(this.line(this.indexAt(row)));
      if (above.length) this.window.prepend(...above);
      if (below.length) this.window.append(...below);
      this.drawn = { first, els: [...above, ...keep, ...below], marked: this.marked, offset };
    }
    if (focusIndex !== null) {
      const control = this.window.querySelector(`[data-index="${focusIndex}"] .${focusClass.split(" ")[0]}`);
      if (control && control !== document.activeElement) control.focus({ preventScroll: true });
    }
  }

  line(index) {
    const entry = this.entryAt(index);
    const number = index + 1;
    if (!entry) {
      return h("div", { class: "log-line log-pending", dataset: { index: String(index) } },
        h("a", { class: "ln", href: this.linkFor(number), "aria-label": `line ${number}` },
          String(number)),
        h("span", { class: "msg" }, "…"));
    }
    const known = index < this.entries.length;  // else a tail line: its step is not known
    const classes = ["log-line"];
    if (entry.type) classes.push(`log-${entry.type}`);
    if (index === this.marked) classes.push("marked");
    const el = h("div", { class: classes.join(" "), dataset: { index: String(index) } },
      h("a", { class: "ln", href: this.linkFor(number), "aria-label": `line ${number}` },
        String(number)));
    if (entry.type === "command" && !known) {
      // folds once the log reaches it: the same place, not yet a button
      el.append(h("span", { class: "fold", "aria-hidden": "true" }),
        h("span", { class: "msg" }, entry.message));
    } else if (entry.type === "command") {
      const section = this.sections.get(index);
      el.append(
        h("button", {
          type: "button", class: "fold", "aria-expanded": String(!section.collapsed),
          "aria-label": `${section.collapsed ? "Unfold" : "Fold"} this step (${section.count} lines)`,
        }),
        h("span", { class: "msg" }, entry.message,
          section.collapsed && section.count
            ? h("span", { class: "count" }, `${section.count.toLocaleString()} lines folded`) : null),
      );
    } else if (entry.type === "phase") {
      el.append(h("span", { class: "msg" }, `phase: ${entry.message}`));
    } else {
      const indent = known && this.sectionOf[index] !== NO_SECTION ? " indent" : "";
      el.append(h("span", { class: `msg${indent}` }, renderAnsi(entry.message)));
    }
    return el;
  }
}

function grow(array) {
  const bigger = new Int32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}
