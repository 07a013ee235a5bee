// ANSI escape sequences in build output: SGR colours and styles become spans; other
// sequences (cursor moves, titles) are dropped. Each log line starts with no style:
// lines are rendered one at a time as they scroll into view.

// CSI ... final byte, OSC ... BEL/ST, and two-byte escapes
const ESCAPES = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]/g;

function cube(n) {
  // xterm's 256 colours: 16-231 a 6x6x6 cube, 232-255 greys
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  const i = n - 16;
  const step = (c) => (c === 0 ? 0 : 55 + c * 40);
  return `rgb(${step(Math.floor(i / 36))},${step(Math.floor(i / 6) % 6)},${step(i % 6)})`;
}

function extended(codes, i, style, which) {
  // 38;5;n / 38;2;r;g;b (and 48;...): returns how many codes it used
  if (codes[i + 1] === 5 && codes.length > i + 2) {
    const n = codes[i + 2];
    if (n < 16) { style[which] = n; style[`${which}Css`] = null; } else {
      style[which] = null; style[`${which}Css`] = cube(n);
    }
    return 2;
  }
  if (codes[i + 1] === 2 && codes.length > i + 4) {
    const [r, g, b] = codes.slice(i + 2, i + 5).map((c) => Math.max(0, Math.min(255, c)));
    style[which] = null;
    style[`${which}Css`] = `rgb(${r},${g},${b})`;
    return 4;
  }
  return 0;
}

const plain = () => ({ fg: null, bg: null, fgCss: null, bgCss: null, bold: false,
  dim: false, italic: false, underline: false, inverse: false });

function apply(style, params) {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((c) => (c === "" ? 0 : Number(c)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(style, plain());
    else if (c === 1) style.bold = true;
    else if (c === 2) style.dim = true;
    else if (c === 3) style.italic = true;
    else if (c === 4) style.underline = true;
    else if (c === 7) style.inverse = true;
    else if (c === 22) { style.bold = false; style.dim = false; }
    else if (c === 23) style.italic = false;
    else if (c === 24) style.underline = false;
    else if (c === 27) style.inverse = false;
    else if (c >= 30 && c <= 37) { style.fg = c - 30; style.fgCss = null; }
    else if (c === 38) i += extended(codes, i, style, "fg");
    else if (c === 39) { style.fg = null; style.fgCss = null; }
    else if (c >= 40 && c <= 47) { style.bg = c - 40; style.bgCss = null; }
    else if (c === 48) i += extended(codes, i, style, "bg");
    else if (c === 49) { style.bg = null; style.bgCss = null; }
    else if (c >= 90 && c <= 97) { style.fg = c - 90 + 8; style.fgCss = null; }
    else if (c >= 100 && c <= 107) { style.bg = c - 100 + 8; style.bgCss = null; }
  }
}

function span(text, style) {
  let { fg, bg, fgCss, bgCss } = style;
  if (style.inverse) {
    [fg, bg, fgCss, bgCss] = [bg ?? 0, fg ?? 7, bgCss, fgCss];
  }
  const classes = [];
  if (fg !== null && fg !== undefined) classes.push(`ansi-fg-${fg}`);
  if (bg !== null && bg !== undefined) classes.push(`ansi-bg-${bg}`);
  if (style.bold) classes.push("ansi-bold");
  if (style.dim) classes.push("ansi-dim");
  if (style.italic) classes.push("ansi-italic");
  if (style.underline) classes.push("ansi-underline");
  if (!classes.length && !fgCss && !bgCss) return document.createTextNode(text);
  const el = document.createElement("span");
  if (classes.length) el.className = classes.join(" ");
  // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy
  if (fgCss) el.style.color = fgCss;
  if (bgCss) el.style.backgroundColor = bgCss;
  el.textContent = text;
  return el;
}

// the nodes of one line of output
export function renderAnsi(text) {
  if (!text.includes("\x1b")) return [document.createTextNode(text)];
  const nodes = [];
  const style = plain();
  let last = 0;
  ESCAPES.lastIndex = 0;
  for (let m = ESCAPES.exec(text); m; m = ESCAPES.exec(text)) {
    if (m.index > last) nodes.push(span(text.slice(last, m.index), style));
    if (m[2] === "m") apply(style, m[1]);
    last = ESCAPES.lastIndex;
  }
  if (last < text.length) nodes.push(span(text.slice(last), style));
  return nodes;
}

// the text without escape sequences (for searching and copying)
export function stripAnsi(text) {
  return text.includes("\x1b") ? text.replace(ESCAPES, "") : text;
}
