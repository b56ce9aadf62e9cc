# SPDX-License-Identifier: Apache-2.0
"""Reference model of rule evaluation (schemas/RULES.md) on top of the engine
model (../engine/model.py).

It shares no code with core/rules.c or client/js/src/rules.js: patterns and
pointers are split into unescaped tokens here, every command works on a deep
copy (a refused command drops it), and stamps rebuild the command's value as
a plain dict. cases.py uses it to compute states, chains and digests and to
cross-check the codes and rule names written by hand.
"""
import copy
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine"))
import model  # noqa: E402
from model import Fail, from_json, kind, parse_pointer  # noqa: E402

WRITE_OPS = ("add", "replace", "merge", "create")
STAR = object()


class Pattern:
    def __init__(self, text):
        toks = parse_pointer(text)
        assert toks is not None, text
        self.tail = bool(toks) and toks[-1] == "**"
        if self.tail:
            toks = toks[:-1]
        self.segs = [STAR if t == "*" else t for t in toks]

    def match(self, toks, extra=False):
        """The anchor length (tokens before "**") when toks match, else None.
        extra: toks is followed by one token not known yet (create's key),
        which matches any segment."""
        n = len(self.segs)
        have = len(toks) + (1 if extra else 0)
        if have < n or (have > n and not self.tail):
            return None
        for i in range(min(n, len(toks))):
            if self.segs[i] is not STAR and self.segs[i] != toks[i]:
                return None
        return n


def resolve(root, toks):
    cur = root
    for t in toks:
        k = kind(cur)
        if k == "map":
            if t not in cur:
                return None, False
            cur = cur[t]
        elif k == "array":
            if not model.INDEX.fullmatch(t) or int(t) >= len(cur):
                return None, False
            cur = cur[int(t)]
        else:
            return None, False
    return cur, True


class Rules:
    def __init__(self, doc):
        self.default_role = doc.get("default_role", "member")
        self.rules = []
        for r in doc["rules"]:
            name = r["name"]
            if "allow" in r:
                a = r["allow"]
                self.rules.append(("allow", name, {
                    "ops": set(a["ops"]), "paths": [Pattern(p) for p in a["paths"]],
                    "roles": a.get("roles"), "where": a.get("where", [])}))
            elif "constraint" in r:
                c = r["constraint"]
                self.rules.append(("constraint", name, (Pattern(c["path"]), c["schema"])))
            else:
                s = r["stamp"]
                self.rules.append(("stamp", name, {
                    "path": Pattern(s["path"]), "on": set(s.get("on", ["add", "create"])),
                    "set": s["set"]}))

    def of(self, kind_):
        return [(n, x) for k, n, x in self.rules if k == kind_]


def shape_code(cmd):
    """The engine's checks that need no state (ENGINE.md 1-3): they come
    before the rules."""
    op = cmd.get("op")
    path, frm = cmd.get("path", ""), cmd.get("from", "")
    if op not in model.OPS:
        return "invalid"
    if op in model.VALUE_OPS and "value" not in cmd:
        return "invalid"
    value = from_json(cmd["value"]) if "value" in cmd else None
    if op == "incr" and kind(value) not in ("int", "float"):
        return "invalid"
    if op == "merge" and kind(value) != "map":
        return "invalid"
    if parse_pointer(path) is None or (op in model.FROM_OPS and parse_pointer(frm) is None):
        return "invalid"
    if path == "" and op in ("add", "remove", "replace", "move", "copy"):
        return "forbidden"
    if op == "move" and frm == "":
        return "forbidden"
    if op == "move" and path.startswith(frm + "/"):
        return "invalid"
    return None


def cond_holds(c, anchor, found, value, user, role):
    if "target" in c:
        if not found:
            return False
        v, ok = resolve(anchor, parse_pointer(c["target"]))
    else:
        if value is None:
            return False
        v, ok = resolve(value[0], parse_pointer(c["value"]))
    if not ok:
        return False
    want = c["eq"] if "eq" in c else c["ne"]
    if want == "$user":
        eq = kind(v) == "str" and v == user
    elif want == "$role":
        eq = kind(v) == "str" and v == role
    else:
        eq = model.equal(v, from_json(want))
    return eq if "eq" in c else not eq


def allow_permits(a, state, cmd, user, role):
    """(permits, near)"""
    op = cmd["op"]
    if op not in a["ops"]:
        return False, False
    if a["roles"] is not None and role not in a["roles"]:
        return False, False
    ptoks = parse_pointer(cmd.get("path", ""))
    pa = next((m for m in (p.match(ptoks) for p in a["paths"]) if m is not None), None)
    if pa is None:
        return False, False
    anchors = [ptoks[:pa]]
    if op in model.FROM_OPS:
        ftoks = parse_pointer(cmd.get("from", ""))
        fa = next((m for m in (p.match(ftoks) for p in a["paths"]) if m is not None), None)
        if fa is None:
            return False, True
        anchors.append(ftoks[:fa])
    value = (from_json(cmd["value"]),) if "value" in cmd else None
    for c in a["where"]:
        for toks in anchors:
            anchor, found = resolve(state, toks)
            if not cond_holds(c, anchor, found, value, user, role):
                return False, True
    return True, True


def under_field(pat, field, toks):
    n = len(pat.segs)
    if len(toks) <= n:
        return False
    if any(pat.segs[i] is not STAR and pat.segs[i] != toks[i] for i in range(n)):
        return False
    return toks[n] == field


def stamp_guard(st, cmd):
    op = cmd["op"]
    ptoks = parse_pointer(cmd.get("path", ""))
    for f in st["set"]:
        if under_field(st["path"], f, ptoks):
            return True
        if op == "move" and under_field(st["path"], f, parse_pointer(cmd.get("from", ""))):
            return True
    if op in model.FROM_OPS:
        return st["path"].match(ptoks) is not None
    if op not in WRITE_OPS or op in st["on"]:
        return False
    if st["path"].match(ptoks, extra=op == "create") is None:
        return False
    value = from_json(cmd["value"])
    return kind(value) == "map" and any(f in value for f in st["set"])


def check_command(rules, state, cmd, user, role):
    allows = rules.of("allow")
    if allows:
        near, ok = None, False
        for name, a in allows:
            ok, nr = allow_permits(a, state, cmd, user, role)
            if ok:
                break
            if nr and near is None:
                near = name
        if not ok:
            return near if near is not None else "allow"
    for name, st in rules.of("stamp"):
        if stamp_guard(st, cmd):
            return name
    return None


def stamp_value(rules, op, loc_toks, value, user, ts, version):
    """The value with every applying stamp's fields set (or value itself)."""
    for _, st in rules.of("stamp"):
        if op not in st["on"] or kind(value) != "map" or st["path"].match(loc_toks) is None:
            continue
        value = dict(value)
        key = loc_toks[-1] if loc_toks else ""
        for f, var in st["set"].items():
            value[f] = {"$user": user, "$ts": ts, "$version": version + 1, "$key": key}[var]
    return value


def validate(s, v):
    k = kind(v)
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        have = {"nil": ["null"], "bool": ["boolean"], "int": ["integer", "number"],
                "float": ["number"], "str": ["string"], "array": ["array"],
                "map": ["object"], "bin": []}[k]
        if not any(t in types for t in have):
            return False
    if "const" in s and not model.equal(v, from_json(s["const"])):
        return False
    if "enum" in s and not any(model.equal(v, from_json(e)) for e in s["enum"]):
        return False
    if k in ("int", "float"):
        if "minimum" in s and v < s["minimum"]:
            return False
        if "maximum" in s and v > s["maximum"]:
            return False
    if k == "str":
        if "minLength" in s and len(v) < s["minLength"]:
            return False
        if "maxLength" in s and len(v) > s["maxLength"]:
            return False
    if k == "array":
        if "minItems" in s and len(v) < s["minItems"]:
            return False
        if "maxItems" in s and len(v) > s["maxItems"]:
            return False
        if "items" in s and not all(validate(s["items"], x) for x in v):
            return False
    if k == "map":
        if "minProperties" in s and len(v) < s["minProperties"]:
            return False
        if "maxProperties" in s and len(v) > s["maxProperties"]:
            return False
        if any(r not in v for r in s.get("required", [])):
            return False
        props = s.get("properties", {})
        for key, x in v.items():
            if key in props:
                if not validate(props[key], x):
                    return False
            elif "additionalProperties" in s:
                ap = s["additionalProperties"]
                if ap is False or (isinstance(ap, dict) and not validate(ap, x)):
                    return False
    return True


def walk(pat, schema, node, i, toks):
    """False when a location the command may have changed violates."""
    if i == len(pat.segs):
        return validate(schema, node)
    k = kind(node)
    if k not in ("map", "array"):
        return True
    seg = pat.segs[i]
    if i < len(toks):
        if seg is not STAR and seg != toks[i]:
            return True
        names = [toks[i]]
        if toks[i] == "-" and i == len(toks) - 1 and k == "array":
            # the last token "-" names the item the command appended
            names = [str(len(node) - 1)] if node else []
    elif seg is not STAR:
        names = [seg]
    else:
        names = list(node.keys()) if k == "map" else [str(j) for j in range(len(node))]
    for name in names:
        c, ok = resolve(node, [name])
        if ok and not walk(pat, schema, c, i + 1, toks):
            return False
    return True


def check_after(rules, state, cmd, eff_toks):
    if cmd["op"] == "test":
        return None
    for name, (pat, schema) in rules.of("constraint"):
        ok = walk(pat, schema, state, 0, eff_toks)
        if ok and cmd["op"] == "move":
            ok = walk(pat, schema, state, 0, parse_pointer(cmd.get("from", "")))
        if not ok:
            return name
    return None


class RulesDoc(model.Doc):
    def __init__(self, doc, state, version, rules, role, config=None):
        super().__init__(doc, state, version, config)
        self.rules = Rules(rules) if rules is not None else None
        self.role = role
        self.user, self.ts = "", 0

    def apply(self, flush):
        self.user, self.ts = flush.get("user", ""), flush.get("ts", 0)
        return super().apply(flush)

    def _one(self, cmd):
        """(code, rule, new_state, key, applied_cmd)"""
        if self.rules is None:
            code, s, key = model.apply_command(self.id, self.state, self.version, cmd, self.cfg)
            return code, None, s, key, cmd
        code = shape_code(cmd)
        if code:
            return code, None, self.state, None, cmd
        role = self.role or self.rules.default_role
        rule = check_command(self.rules, self.state, cmd, self.user, role)
        if rule is not None:
            return "rule_violation", rule, self.state, None, cmd
        op, ptoks = cmd["op"], parse_pointer(cmd["path"])
        c2 = cmd
        if op == "create":
            # learn the key the engine picks, then write the stamped value
            # there (that key is free in this state, so it is kept)
            code, s, key = model.apply_command(self.id, self.state, self.version, cmd, self.cfg)
            if code != "ok":
                return code, None, self.state, None, cmd
            v = stamp_value(self.rules, op, ptoks + [key], from_json(cmd["value"]), self.user,
                            self.ts, self.version)
            c2 = dict(cmd, value=model.to_json(v), key=key)
            eff = ptoks + [key]
        elif op in WRITE_OPS:
            v = stamp_value(self.rules, op, ptoks, from_json(cmd["value"]), self.user, self.ts,
                            self.version)
            c2 = dict(cmd, value=model.to_json(v))
            eff = ptoks
        else:
            eff = ptoks
        code, s, key = model.apply_command(self.id, self.state, self.version, c2, self.cfg)
        if code != "ok":
            return code, None, self.state, None, cmd
        rule = check_after(self.rules, s, cmd, eff)
        if rule is not None:
            return "rule_violation", rule, self.state, None, cmd
        return "ok", None, s, key, c2

    def _commands(self, cmds, atomic):
        v0 = self.version
        state0 = self.state
        results, applied = [], []
        for i, cmd in enumerate(cmds):
            code, rule, s, key, c2 = self._one(cmd)
            if code != "ok":
                r = {"code": code, "version": 0}
                if rule is not None:
                    r["rule"] = rule
                results.append(r)
                if atomic:
                    self.state, self.version = state0, v0
                    results = [{"code": "aborted", "version": 0} for _ in cmds]
                    results[i] = r
                    return self._outcome("aborted", results=results)
                continue
            self.state = s
            self.version += 1
            r = {"code": "ok", "version": self.version}
            if cmd["op"] == "create":
                r["key"] = key
            results.append(r)
            applied.append(model.chain_command(c2, key))
        if applied:
            self.chain = model.blake(self.chain + model.mp([v0, self.version, applied]))
        out = self._outcome("ok", results=results)
        out["version_before"] = v0
        return out


def run_case(c):
    d = RulesDoc(c["doc"], c["state"], c["version"], c.get("rules"), c.get("role"),
                 c.get("config"))
    for b in c.get("before", []):
        d.apply(b)
    out = d.apply(c["flush"])
    return {"code": out["code"], "duplicate": out["duplicate"],
            "version_before": out["version_before"], "version_after": out["version_after"],
            "results": out["results"], "state": model.to_json(d.state), "version": d.version,
            "chain": d.chain.hex(), "digest": d.digest().hex()}
