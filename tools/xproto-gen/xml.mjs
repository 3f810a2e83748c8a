// A minimal XML reader for xcb-proto's protocol descriptions: elements, attributes, text, CDATA.
// It is enough for xproto.xml (no DTD, no entities beyond the five predefined ones).

/** @typedef {{ tag: string, attrs: Record<string,string>, children: XmlNode[], text: string }} XmlNode */

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const decode = (s) => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e) => ENTITIES[e]);

/** @returns {XmlNode} */
export function parseXml(source) {
  const root = { tag: '#root', attrs: {}, children: [], text: '' };
  const stack = [root];
  let i = 0;
  while (i < source.length) {
    const lt = source.indexOf('<', i);
    if (lt < 0) break;
    if (lt > i) stack[stack.length - 1].text += decode(source.slice(i, lt));
    if (source.startsWith('<!--', lt)) {
      i = source.indexOf('-->', lt) + 3;
      continue;
    }
    if (source.startsWith('<![CDATA[', lt)) {
      const end = source.indexOf(']]>', lt);
      stack[stack.length - 1].text += source.slice(lt + 9, end);
      i = end + 3;
      continue;
    }
    if (source.startsWith('<?', lt) || source.startsWith('<!', lt)) {
      i = source.indexOf('>', lt) + 1;
      continue;
    }
    const gt = source.indexOf('>', lt);
    const body = source.slice(lt + 1, gt);
    i = gt + 1;
    if (body.startsWith('/')) {
      stack.pop();
      continue;
    }
    const selfClosing = body.endsWith('/');
    const inner = selfClosing ? body.slice(0, -1) : body;
    const name = inner.match(/^[^\s]+/)[0];
    const attrs = {};
    for (const m of inner.matchAll(/([\w:-]+)\s*=\s*"([^"]*)"/g)) attrs[m[1]] = decode(m[2]);
    const node = { tag: name, attrs, children: [], text: '' };
    stack[stack.length - 1].children.push(node);
    if (!selfClosing) stack.push(node);
  }
  return root;
}
