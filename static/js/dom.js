// Small DOM helpers. Everything that comes from users goes through
// textContent or Text nodes here; nothing in the client builds HTML
// from strings.

// h creates an element. props: class, text (textContent), dataset,
// on<event> handlers, anything else becomes an attribute. Children may be
// nodes or strings (strings become Text nodes, never markup).
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'style' || key === 'innerHTML' || key.startsWith('on')) throw new Error(`h: refusing ${key}`);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) el.append(child);
  }
  return el;
}

// svgIcon builds a stroked icon from a path, for buttons made in JS.
export function svgIcon(d) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  svg.append(path);
  return svg;
}

// syncList makes ul's children match items, reusing the element of each
// key so focus and hover survive updates. create(item) builds a new
// element; update(el, item) refreshes one (new or reused).
export function syncList(ul, items, key, create, update) {
  const keys = new Set(items.map(key));
  const existing = new Map();
  for (const el of [...ul.children]) {
    if (keys.has(el.dataset.key)) existing.set(el.dataset.key, el);
    else el.remove();
  }
  let cursor = ul.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let el = existing.get(k);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (el === cursor) cursor = cursor.nextElementSibling;
    else ul.insertBefore(el, cursor);
  }
}

export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}
