// Arrow IPC decoding shared by every hawknb view.
// Stable API (other views build on it):
//   toBytes(x) -> Uint8Array           DataView | ArrayBuffer | TypedArray | null -> bytes
//   decodeTable(x) -> {numRows, names, columns: {name: Float64Array | Array}}
//       numeric columns become Float64Array with null -> NaN (so charts treat null as a gap);
//       string columns become plain Arrays (null stays null). Python's table_to_ipc sends
//       datetimes as Float64 epoch milliseconds, so time columns are numbers here.
//   typedArray(meta, bytes) -> TypedArray   meta = {dtype, shape} from Python's typed_array.
import { tableFromIPC } from "apache-arrow";

export function toBytes(x) {
  if (x == null) return new Uint8Array(0);
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`expected binary data, got ${typeof x}`);
}

function isNumericType(type) {
  // apache-arrow Type ids: Int=2, Float=3, Decimal=7, Date=8, Time=9, Timestamp=10
  const id = type.typeId;
  return id === 2 || id === 3 || id === 8 || id === 9 || id === 10;
}

export function decodeTable(x) {
  const bytes = toBytes(x);
  if (bytes.byteLength === 0) return { numRows: 0, names: [], columns: {} };
  const table = tableFromIPC(bytes);
  const n = table.numRows;
  const columns = {};
  const names = table.schema.fields.map((f) => f.name);
  for (const field of table.schema.fields) {
    const vec = table.getChild(field.name);
    if (isNumericType(field.type)) {
      const out = new Float64Array(n);
      if (vec.nullCount === 0) {
        const arr = vec.toArray();
        for (let i = 0; i < n; i++) out[i] = Number(arr[i]);
      } else {
        for (let i = 0; i < n; i++) {
          const v = vec.get(i);
          out[i] = v == null ? NaN : Number(v);
        }
      }
      columns[field.name] = out;
    } else {
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = vec.get(i);
      columns[field.name] = out;
    }
  }
  return { numRows: n, names, columns };
}

const CTORS = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
};

export function typedArray(meta, x) {
  const Ctor = CTORS[meta.dtype];
  if (!Ctor) throw new TypeError(`unknown dtype ${meta.dtype}`);
  const bytes = toBytes(x);
  // copy so the result is aligned whatever the offset of the incoming DataView
  const copy = bytes.slice().buffer;
  return new Ctor(copy, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT);
}
