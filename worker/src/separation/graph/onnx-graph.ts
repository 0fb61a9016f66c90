// ONNX ModelProto decoding/encoding (onnx-proto: protobufjs-generated) and the small graph
// helpers the rewrite passes share: who produces / consumes a value, constant values, attributes,
// and builders for nodes and tensors.
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.IModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const INT8 = onnx.TensorProto.DataType.INT8;
const AttrType = onnx.AttributeProto.AttributeType;

/** int64 fields decode as Long (the `long` package) or number. */
type Int64 = number | { toNumber(): number };
const toNum = (v: Int64 | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export function graphOf(model: ModelProto): GraphProto & { node: NodeProto[]; initializer: TensorProto[] } {
  const g = model.graph;
  if (!g) throw new Error('model has no graph');
  g.node ??= [];
  g.initializer ??= [];
  return g as GraphProto & { node: NodeProto[]; initializer: TensorProto[] };
}

export function opsetVersion(model: ModelProto, domain = ''): number {
  const entry = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === domain);
  return entry ? toNum(entry.version as Int64) : 0;
}

export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toNum(d as Int64));
}

/** A tensor's values as float32 (raw_data or float_data); null for other element types. */
export function floatValues(t: TensorProto): Float32Array | null {
  if (t.dataType !== FLOAT) return null;
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    // raw_data may sit at an unaligned offset inside the file buffer: copy it out.
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  }
  return Float32Array.from(t.floatData ?? []);
}

/** A tensor's values as numbers for int64 tensors; null otherwise. */
export function int64Values(t: TensorProto): number[] | null {
  if (t.dataType !== INT64) return null;
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out: number[] = [];
    for (let i = 0; i < raw.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
    return out;
  }
  return (t.int64Data ?? []).map((v) => toNum(v as Int64));
}

export function floatTensor(name: string, dims: number[], values: Float32Array): TensorProto {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(bytes) };
}

export function int8Tensor(name: string, dims: number[], values: Int8Array): TensorProto {
  return { name, dims, dataType: INT8, rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

export function int64Tensor(name: string, values: number[]): TensorProto {
  return { name, dims: [values.length], dataType: INT64, int64Data: values };
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map((v) => toNum(v as Int64)) : undefined;
}

export function attrInt(node: NodeProto, name: string): number | undefined {
  const a = attr(node, name);
  return a ? toNum(a.i as Int64) : undefined;
}

export function attrFloat(node: NodeProto, name: string): number | undefined {
  const a = attr(node, name);
  return a ? (a.f ?? 0) : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}

export const intsAttr = (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints });
export const intAttr = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i });
export const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: AttrType.FLOAT, f });

export function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attribute: AttributeProto[] = [], domain?: string): NodeProto {
  return { opType, input: inputs, output: outputs, name, attribute, ...(domain ? { domain } : {}) };
}

/**
 * Producers, consumers and constants of one graph. Passes edit `graph.node` / `graph.initializer`
 * and call `rebuild()` (or build a new index) before the next pattern search.
 */
export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializer = new Map<string, TensorProto>();
  readonly graphOutputs = new Set<string>();

  constructor(readonly graph: GraphProto & { node: NodeProto[]; initializer: TensorProto[] }) {
    this.rebuild();
  }

  rebuild(): void {
    this.producer.clear();
    this.consumers.clear();
    this.initializer.clear();
    this.graphOutputs.clear();
    for (const t of this.graph.initializer) this.initializer.set(t.name ?? '', t);
    for (const o of this.graph.output ?? []) this.graphOutputs.add(o.name ?? '');
    for (const n of this.graph.node) {
      for (const o of n.output ?? []) this.producer.set(o, n);
      for (const i of n.input ?? []) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
  }

  consumersOf(value: string): NodeProto[] {
    return this.consumers.get(value) ?? [];
  }

  /** The single consumer of `value`, or undefined when it has several (or is a graph output). */
  soleConsumer(value: string): NodeProto | undefined {
    const list = this.consumersOf(value);
    return list.length === 1 && !this.graphOutputs.has(value) ? list[0] : undefined;
  }

  /** A constant's tensor: an initializer or the value of a Constant node. */
  constant(value: string): TensorProto | undefined {
    const init = this.initializer.get(value);
    if (init) return init;
    const p = this.producer.get(value);
    if (p?.opType === 'Constant') return attr(p, 'value')?.t ?? undefined;
    return undefined;
  }

  constantFloats(value: string): Float32Array | null {
    const t = this.constant(value);
    return t ? floatValues(t) : null;
  }

  constantDims(value: string): number[] | undefined {
    const t = this.constant(value);
    return t ? dimsOf(t) : undefined;
  }

  /** A name not yet used by any value or node in the graph. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.producer.has(name) || this.initializer.has(name) || this.consumers.has(name); i++) name = `${base}_${i}`;
    this.producer.set(name, { name }); // reserve
    return name;
  }
}

/** Drops nodes no graph output depends on, and initializers no node reads. */
export function pruneDead(graph: GraphProto & { node: NodeProto[]; initializer: TensorProto[] }): void {
  const live = new Set<string>((graph.output ?? []).map((o) => o.name ?? ''));
  const keep: NodeProto[] = [];
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const n = graph.node[i];
    if ((n.output ?? []).some((o) => live.has(o))) {
      keep.push(n);
      for (const inp of n.input ?? []) if (inp) live.add(inp);
    }
  }
  graph.node = keep.reverse();
  graph.initializer = graph.initializer.filter((t) => live.has(t.name ?? ''));
}

/** A float32 graph input/output declaration. */
export function floatValueInfo(name: string, dims: number[]): onnxProto.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

/** A model around one graph (opset 17 by default), e.g. for small test graphs. */
export function buildModel(graph: GraphProto, opset = 17): ModelProto {
  return { irVersion: 8, opsetImport: [{ domain: '', version: opset }], producerName: 'msaas', graph };
}
