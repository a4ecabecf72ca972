import { XMLBuilder } from 'fast-xml-parser';
import { SaxesParser } from 'saxes';

/** One element of a parsed document: attributes, child elements in order, and its own text. */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlError';
  }
}

/**
 * Parses with saxes (a strict, non-validating parser). Documents with a DOCTYPE are refused outright: RTX
 * never writes one, and refusing it rules out entity-expansion tricks; saxes itself rejects undefined
 * entities and never fetches anything.
 */
export function parseXml(xml: string): XmlElement {
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let failure: Error | null = null;
  parser.on('error', (err) => {
    failure ??= new XmlError(err.message);
  });
  parser.on('doctype', () => {
    failure ??= new XmlError('DOCTYPE declarations are not accepted');
  });
  parser.on('opentag', (tag) => {
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(tag.attributes)) attributes[k] = String(v);
    const el: XmlElement = { name: tag.name, attributes, children: [], text: '' };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root ??= el;
    stack.push(el);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const addText = (t: string) => {
    const cur = stack[stack.length - 1];
    if (cur) cur.text += t;
  };
  parser.on('text', addText);
  parser.on('cdata', addText);
  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= err instanceof Error ? new XmlError(err.message) : new XmlError(String(err));
  }
  if (failure) throw failure;
  if (!root) throw new XmlError('the document has no root element');
  return root;
}

/** The first child named `name` (case-sensitive, as XML is). */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/**
 * A node for {@link buildXml}: attributes under `@_name`, text under `#text`, child elements under their
 * tag name (arrays for repeats). Key order is output order.
 */
export type XmlNode = { [key: string]: string | number | XmlNode | XmlNode[] | undefined };

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  suppressEmptyNode: true,
  suppressBooleanAttributes: false,
  processEntities: true,
  format: false,
});

/** Serialises with fast-xml-parser's builder, which escapes text and attribute values. */
export function buildXml(root: XmlNode, declaration?: string): string {
  const body = builder.build(root) as string;
  return declaration ? `${declaration}${body}` : body;
}
