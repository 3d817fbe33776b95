/**
 * The patch flavours the fake API server applies: RFC 7386 JSON merge patch, RFC 6902 JSON patch, and
 * the simple cases of Kubernetes strategic merge patch (maps merge, `null` deletes, lists are replaced;
 * no `$patch`/`$setElementOrder` directives and no merge keys).
 *
 * @packageDocumentation
 */

/** A patch the server cannot apply; `status` 400 (malformed) or 422 (does not apply). */
export class PatchError extends Error {
  override readonly name = "PatchError";
  constructor(
    readonly status: 400 | 422,
    message: string,
  ) {
    super(message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** RFC 7386: returns the patched document (the target is not modified). */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** Strategic merge patch, the simple cases (see the module note). */
export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  const check = (v: unknown, path: string): void => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) check(x, `${path}[${i}]`);
    } else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (k.startsWith("$")) {
          throw new PatchError(
            422,
            `fake API server: strategic merge directive ${k} at ${path} is not supported`,
          );
        }
        check(x, `${path}.${k}`);
      }
    }
  };
  check(patch, "");
  return applyMergePatch(target, patch);
}

function unescapeToken(token: string): string {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

function pointer(path: unknown): string[] {
  if (typeof path !== "string" || (path !== "" && !path.startsWith("/"))) {
    throw new PatchError(400, `invalid JSON pointer ${JSON.stringify(path)}`);
  }
  return path === "" ? [] : path.slice(1).split("/").map(unescapeToken);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 6902: applies `ops` to a copy of `target`. */
export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError(400, "a JSON patch must be a list of operations");
  let doc = structuredClone(target);
  const parentOf = (tokens: string[], op: string): { parent: unknown; key: string } => {
    if (tokens.length === 0) throw new PatchError(422, `${op}: cannot address the document root`);
    let cur: unknown = doc;
    for (const t of tokens.slice(0, -1)) {
      if (Array.isArray(cur)) cur = cur[Number(t)];
      else if (isObject(cur)) cur = cur[t];
      else cur = undefined;
      if (cur === undefined)
        throw new PatchError(
          422,
          `${op} operation does not apply: doc is missing path: /${tokens.join("/")}`,
        );
    }
    return { parent: cur, key: tokens[tokens.length - 1]! };
  };
  const get = (tokens: string[], op: string): unknown => {
    let cur: unknown = doc;
    for (const t of tokens) {
      if (Array.isArray(cur)) cur = /^\d+$/.test(t) ? cur[Number(t)] : undefined;
      else if (isObject(cur)) cur = Object.hasOwn(cur, t) ? cur[t] : undefined;
      else cur = undefined;
      if (cur === undefined)
        throw new PatchError(
          422,
          `${op} operation does not apply: doc is missing path: /${tokens.join("/")}`,
        );
    }
    return cur;
  };
  const remove = (tokens: string[], op: string): unknown => {
    const value = get(tokens, op);
    const { parent, key } = parentOf(tokens, op);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete (parent as Record<string, unknown>)[key];
    return value;
  };
  const add = (tokens: string[], value: unknown, op: string): void => {
    if (tokens.length === 0) {
      doc = value;
      return;
    }
    const { parent, key } = parentOf(tokens, op);
    if (Array.isArray(parent)) {
      const i = key === "-" ? parent.length : Number(key);
      if (!/^\d+$/.test(key) && key !== "-") throw new PatchError(422, `${op}: invalid array index ${key}`);
      if (i > parent.length)
        throw new PatchError(422, `${op} operation does not apply: index ${i} out of bounds`);
      parent.splice(i, 0, value);
    } else if (isObject(parent)) parent[key] = value;
    else
      throw new PatchError(
        422,
        `${op} operation does not apply: parent of /${tokens.join("/")} is not a container`,
      );
  };
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== "string")
      throw new PatchError(400, "invalid JSON patch operation");
    const op = raw.op;
    const path = pointer(raw.path);
    switch (op) {
      case "add":
        if (!("value" in raw)) throw new PatchError(400, "add operation needs a value");
        add(path, structuredClone(raw.value), op);
        break;
      case "remove":
        remove(path, op);
        break;
      case "replace":
        if (!("value" in raw)) throw new PatchError(400, "replace operation needs a value");
        if (path.length === 0) doc = structuredClone(raw.value);
        else {
          remove(path, op);
          add(path, structuredClone(raw.value), op);
        }
        break;
      case "move": {
        const value = remove(pointer(raw.from), op);
        add(path, value, op);
        break;
      }
      case "copy":
        add(path, structuredClone(get(pointer(raw.from), op)), op);
        break;
      case "test":
        if (!deepEqual(get(path, op), raw.value)) {
          throw new PatchError(422, `testing value /${path.join("/")} failed: test failed`);
        }
        break;
      default:
        throw new PatchError(400, `unknown JSON patch operation ${JSON.stringify(op)}`);
    }
  }
  return doc;
}

export { deepEqual };
