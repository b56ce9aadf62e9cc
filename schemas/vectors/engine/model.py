# SPDX-License-Identifier: Apache-2.0
"""Reference model of the Flushline apply engine, written from schemas/ENGINE.md.

It shares no code with the C engine (core/engine) or the JS engine
(client/js/src/engine.js): values are plain Python values, pointers are split
and walked here, every command works on a deep copy of the state (so a
rejected command or an aborted flush simply drops the copy; no undo log),
and sizes are measured by encoding the whole state. cases.py uses it to
compute the expected outcome, state, chain hash and digest of every vector
and to cross-check the expectations written by hand.

Values: None (nil), bool, int (int64), float (float64), str, bytes (bin),
list (array), dict with str keys (map). In vector JSON a bin is
{"$bin": "<base64>"}; from_json / to_json convert.
"""
import base64
import copy
import hashlib
import math
import re
import struct

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
OPS = ("add", "remove", "replace", "move", "copy", "test", "incr", "merge", "create")
VALUE_OPS = ("add", "replace", "test", "incr", "merge", "create")
FROM_OPS = ("move", "copy")
DEFAULT_CONFIG = {"max_state_bytes": 1 << 20, "max_depth": 64, "max_dedup": 4096}
INDEX = re.compile(r"0|[1-9][0-9]*")


# ------------------------------------------------------------------ values

def from_json(j):
    if isinstance(j, dict):
        if list(j.keys()) == ["$bin"] and isinstance(j["$bin"], str):
            return base64.b64decode(j["$bin"], validate=True)
        return {k: from_json(v) for k, v in j.items()}
    if isinstance(j, list):
        return [from_json(v) for v in j]
    return j


def to_json(v):
    if isinstance(v, bytes):
        return {"$bin": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    return v


def kind(v):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, bytes):
        return "bin"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "map"
    raise TypeError(type(v))


def equal(a, b):
    """ENGINE.md test: same type and content (int 1 != float 1.0, bin != str;
    floats compare as numbers, so 0.0 equals -0.0)."""
    k = kind(a)
    if k != kind(b):
        return False
    if k == "array":
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if k == "map":
        return a.keys() == b.keys() and all(equal(a[x], b[x]) for x in a)
    return a == b


def depth(v):
    """Container depth: scalars 0, a container 1 + its deepest child."""
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


def _len_hdr(n, fix, fixmax, t16, t32):
    if n <= fixmax:
        return bytes([fix | n])
    return bytes([t16]) + struct.pack(">H", n) if n < 65536 else bytes([t32]) + struct.pack(">I", n)


def mp(v):
    """Canonical msgpack (value.h): smallest int form, float64, keys in byte order."""
    k = kind(v)
    if k == "nil":
        return b"\xc0"
    if k == "bool":
        return b"\xc3" if v else b"\xc2"
    if k == "int":
        if v >= 0:
            if v <= 0x7f:
                return bytes([v])
            for tag, fmt, lim in ((0xcc, ">B", 0xff), (0xcd, ">H", 0xffff),
                                  (0xce, ">I", 0xffffffff), (0xcf, ">Q", 2**64 - 1)):
                if v <= lim:
                    return bytes([tag]) + struct.pack(fmt, v)
        if v >= -32:
            return struct.pack("b", v)
        for tag, fmt, lim in ((0xd0, ">b", -128), (0xd1, ">h", -32768), (0xd2, ">i", -2**31),
                              (0xd3, ">q", -2**63)):
            if v >= lim:
                return bytes([tag]) + struct.pack(fmt, v)
        raise ValueError("int below int64")
    if k == "float":
        return b"\xcb" + struct.pack(">d", v)
    if k in ("str", "bin"):
        b = v.encode() if k == "str" else v
        n = len(b)
        if k == "str" and n < 32:
            hdr = bytes([0xa0 | n])
        elif n < 256:
            hdr = bytes([0xd9 if k == "str" else 0xc4, n])
        elif n < 65536:
            hdr = bytes([0xda if k == "str" else 0xc5]) + struct.pack(">H", n)
        else:
            hdr = bytes([0xdb if k == "str" else 0xc6]) + struct.pack(">I", n)
        return hdr + b
    if k == "array":
        return _len_hdr(len(v), 0x90, 15, 0xdc, 0xdd) + b"".join(mp(x) for x in v)
    items = sorted((key.encode(), x) for key, x in v.items())
    return _len_hdr(len(items), 0x80, 15, 0xde, 0xdf) + b"".join(
        mp(key.decode()) + mp(x) for key, x in items)


def blake(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def create_key(doc, version, counter):
    """ENGINE.md "Create key derivation"."""
    h = blake(doc.encode() + b"\0" + struct.pack(">QI", version, counter))
    return base64.b32encode(h[:10]).decode().lower()


# ------------------------------------------------------------------ pointers

class Fail(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def parse_pointer(p):
    """Tokens of an RFC 6901 pointer, or None when it is not valid."""
    if p == "":
        return []
    if not p.startswith("/"):
        return None
    toks = []
    for raw in p[1:].split("/"):
        if re.search(r"~(?![01])", raw):
            return None
        toks.append(raw.replace("~1", "/").replace("~0", "~"))
    return toks


def walk(root, toks, mode):
    """Resolves a non-empty token list. mode: "exist" (the target must
    exist), "add" (the last token may also name a new map key, index ==
    length or "-"), "upsert" (the last token may also name a new map key).
    Returns (parent, key, exists); raises Fail."""
    cur = root
    for i, t in enumerate(toks):
        last = i == len(toks) - 1
        k = kind(cur)
        if k == "map":
            if t in cur:
                if last:
                    return cur, t, True
                cur = cur[t]
                continue
            if last and mode != "exist":
                return cur, t, False
            raise Fail("path_not_found")
        if k == "array":
            if t == "-":
                if last and mode == "add":
                    return cur, len(cur), False
                raise Fail("path_not_found")
            if not INDEX.fullmatch(t):
                raise Fail("invalid")
            idx = int(t)
            if idx < len(cur):
                if last:
                    return cur, idx, True
                cur = cur[idx]
                continue
            if last and mode == "add" and idx == len(cur):
                return cur, idx, False
            raise Fail("path_not_found")
        raise Fail("type_mismatch")
    raise AssertionError("walk of the root")


def target(root, toks):
    """The existing value a pointer names ("" is the root)."""
    if not toks:
        return root
    parent, key, _ = walk(root, toks, "exist")
    return parent[key]


# ------------------------------------------------------------------ commands

def check_depth(cfg, ntokens, v):
    """A value placed at a pointer with k tokens occupies k + depth(v) levels."""
    if ntokens + depth(v) > cfg["max_depth"]:
        raise Fail("too_large")


def put(parent, key, v, insert):
    if isinstance(parent, dict):
        parent[key] = v
    elif insert:
        parent.insert(key, v)
    else:
        parent[key] = v


def incr_sum(a, b):
    if kind(a) == "int" and kind(b) == "int":
        s = a + b
        if not INT64_MIN <= s <= INT64_MAX:
            raise Fail("too_large")
        return s
    s = float(a) + float(b)
    if not math.isfinite(s):
        raise Fail("too_large")
    return s


def apply_command(doc, state, version, cmd, cfg):
    """One command on state at `version` (the document's current version).
    Returns (code, new_state, key): the new state is a separate copy, and
    state itself is never changed."""
    try:
        s, key = _command(doc, state, version, cmd, cfg)
    except Fail as e:
        return e.code, state, None
    if len(mp(s)) > cfg["max_state_bytes"]:
        return "too_large", state, None
    return "ok", s, key


def _command(doc, state, version, cmd, cfg):
    op = cmd.get("op")
    has_value = "value" in cmd
    value = from_json(cmd["value"]) if has_value else None
    path = cmd.get("path", "")
    frm = cmd.get("from", "")
    # 1. shape
    if op not in OPS:
        raise Fail("invalid")
    if op in VALUE_OPS and not has_value:
        raise Fail("invalid")
    if op == "incr" and kind(value) not in ("int", "float"):
        raise Fail("invalid")
    if op == "merge" and kind(value) != "map":
        raise Fail("invalid")
    ptoks = parse_pointer(path)
    if ptoks is None:
        raise Fail("invalid")
    ftoks = None
    if op in FROM_OPS:
        ftoks = parse_pointer(frm)
        if ftoks is None:
            raise Fail("invalid")
    # 2. root rules
    if path == "" and op in ("add", "remove", "replace", "move", "copy"):
        raise Fail("forbidden")
    if op == "move" and frm == "":
        raise Fail("forbidden")
    # 3. move into own child
    if op == "move" and path.startswith(frm + "/"):
        raise Fail("invalid")
    s = copy.deepcopy(state)
    n = len(ptoks)
    # 4-6. resolution, op checks, caps
    if op == "add":
        parent, key, _ = walk(s, ptoks, "add")
        check_depth(cfg, n, value)
        put(parent, key, value, True)
    elif op == "remove":
        parent, key, _ = walk(s, ptoks, "exist")
        del parent[key]
    elif op == "replace":
        parent, key, _ = walk(s, ptoks, "exist")
        check_depth(cfg, n, value)
        put(parent, key, value, False)
    elif op == "move":
        fparent, fkey, _ = walk(s, ftoks, "exist")
        if frm == path:
            return s, None  # a no-op that succeeds
        v = fparent.pop(fkey)
        parent, key, _ = walk(s, ptoks, "add")  # in the state after the removal
        check_depth(cfg, n, v)
        put(parent, key, v, True)
    elif op == "copy":
        v = copy.deepcopy(target(s, ftoks))
        parent, key, _ = walk(s, ptoks, "add")
        check_depth(cfg, n, v)
        put(parent, key, v, True)
    elif op == "test":
        if not equal(target(s, ptoks), value):
            raise Fail("test_failed")
    elif op == "incr":
        if n == 0:
            raise Fail("type_mismatch")  # the root is a map
        parent, key, exists = walk(s, ptoks, "upsert")
        cur = parent[key] if exists else 0
        if kind(cur) not in ("int", "float"):
            raise Fail("type_mismatch")
        put(parent, key, incr_sum(cur, value), False)
    elif op == "merge":
        if n == 0:
            m = s
        else:
            parent, key, exists = walk(s, ptoks, "upsert")
            if not exists:
                check_depth(cfg, n, value)
                put(parent, key, value, False)
                return s, None
            m = parent[key]
        if kind(m) != "map":
            raise Fail("type_mismatch")
        for k, v in value.items():
            check_depth(cfg, n + 1, v)
        for k, v in value.items():
            m[k] = copy.deepcopy(v)
    elif op == "create":
        m = target(s, ptoks)
        if kind(m) != "map":
            raise Fail("type_mismatch")
        check_depth(cfg, n + 1, value)
        key = cmd.get("key")
        if key is None or key in m:
            counter = 0
            key = create_key(doc, version + 1, counter)
            while key in m:
                counter += 1
                key = create_key(doc, version + 1, counter)
        m[key] = value
        return s, key
    return s, None


def chain_command(cmd, key):
    """An applied command as the chain hash covers it."""
    op = cmd["op"]
    d = {"op": op, "path": cmd.get("path", "")}
    if op in FROM_OPS:
        d["from"] = cmd.get("from", "")
    if op == "create":
        d["key"] = key
    if op in VALUE_OPS:
        d["value"] = from_json(cmd["value"])
    return d


# ------------------------------------------------------------------ documents

class Doc:
    def __init__(self, doc, state, version, config=None):
        self.id = doc
        self.cfg = dict(DEFAULT_CONFIG, **(config or {}))
        self.state = from_json(state)
        self.version = version
        self.chain = bytes(32)
        self.dedup = {}  # client -> (seq, outcome); insertion order = recording order
        self.evicted = 0
        assert kind(self.state) == "map" and depth(self.state) <= self.cfg["max_depth"]
        assert len(mp(self.state)) <= self.cfg["max_state_bytes"]

    def _outcome(self, code, duplicate=False, results=()):
        return {"code": code, "duplicate": duplicate, "version_before": self.version,
                "version_after": self.version, "results": list(results), "chain": self.chain}

    def _record(self, client, seq, out):
        if client in self.dedup:
            del self.dedup[client]
        elif len(self.dedup) >= self.cfg["max_dedup"]:
            del self.dedup[next(iter(self.dedup))]
            self.evicted += 1
        self.dedup[client] = (seq, out)

    def apply(self, flush):
        """Applies a vector flush; returns the outcome (results as in vectors)."""
        seq, client = flush["seq"], flush["client_id"]
        if seq == 0:
            return self._outcome("invalid")
        ent = self.dedup.get(client)
        if ent and seq == ent[0]:
            return dict(ent[1], duplicate=True)
        if ent and seq < ent[0]:
            return self._outcome("ok", duplicate=True)
        if ent and seq > ent[0] + 1:
            return self._outcome("gap")
        if not ent and seq > 1 and self.evicted == 0:
            return self._outcome("gap")
        if "if_version" in flush and flush["if_version"] != self.version:
            out = self._outcome("version_mismatch")
        else:
            out = self._commands(flush["commands"], flush.get("atomic", False))
        self._record(client, seq, out)
        return out

    def _commands(self, cmds, atomic):
        state0, v0 = self.state, self.version
        results, applied = [], []
        for i, cmd in enumerate(cmds):
            code, self.state, key = apply_command(self.id, self.state, self.version, cmd,
                                                  self.cfg)
            if code != "ok":
                results.append({"code": code, "version": 0})
                if atomic:  # every other command of the flush: aborted
                    self.state, self.version = state0, v0
                    results = [{"code": "aborted", "version": 0} for _ in cmds]
                    results[i] = {"code": code, "version": 0}
                    return self._outcome("aborted", results=results)
                continue
            self.version += 1
            r = {"code": "ok", "version": self.version}
            if cmd["op"] == "create":
                r["key"] = key
            results.append(r)
            applied.append(chain_command(cmd, key))
        if applied:
            m = mp([v0, self.version, applied])
            self.chain = blake(self.chain + m)
        out = self._outcome("ok", results=results)
        out["version_before"] = v0
        return out

    def digest(self):
        return blake(mp(self.state))


def run_case(c):
    """Runs a vector case (its "before" flushes, then its flush) and returns
    the full "expect" object the model computes."""
    d = Doc(c["doc"], c["state"], c["version"], c.get("config"))
    for b in c.get("before", []):
        d.apply(b)
    out = d.apply(c["flush"])
    return {"code": out["code"], "duplicate": out["duplicate"],
            "version_before": out["version_before"], "version_after": out["version_after"],
            "results": out["results"], "state": to_json(d.state), "version": d.version,
            "chain": d.chain.hex(), "digest": d.digest().hex()}


def classify(state_json, cmd):
    """Where the first command of a case lands: a list of (role, location,
    target type) for its path and, for move/copy, its from. Roles: the op,
    or "move from" / "copy from" for the source. Locations: "root" (""),
    "top" (one token), "nested map" / "nested array" (three tokens or more,
    by the kind of the container holding the target); two-token pointers
    and pointers whose parent does not resolve are not classified."""
    state = from_json(state_json)
    out = []
    roles = [(cmd.get("op"), cmd.get("path", ""))]
    if cmd.get("op") in FROM_OPS:
        roles.append((cmd["op"] + " from", cmd.get("from", "")))
    for role, p in roles:
        toks = parse_pointer(p) if isinstance(p, str) else None
        if toks is None:
            continue
        if not toks:
            out.append((role, "root", "map"))
            continue
        if len(toks) == 2:
            continue
        try:
            parent = target(state, toks[:-1]) if len(toks) > 1 else state
        except Fail:
            continue
        pk = kind(parent)
        if pk not in ("map", "array"):
            continue
        t = toks[-1]
        if pk == "map":
            there = t in parent
            v = parent.get(t)
        elif t == "-" or INDEX.fullmatch(t):
            there = t != "-" and int(t) < len(parent)
            v = parent[int(t)] if there else None
        else:
            continue  # not an index: invalid, no target
        loc = "top" if len(toks) == 1 else "nested " + pk
        out.append((role, loc, kind(v) if there else "missing"))
    return out
