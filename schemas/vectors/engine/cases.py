#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Authoring script for the engine test vectors (schemas/vectors/engine/*.json).

Two independent sources of expectations, both from schemas/ENGINE.md (RFC
6901/6902 plus the incr/merge/create rules), neither from the C or JS engine:
- by hand: the named cases below write their codes (and most of them their
  states) by hand; derived create keys are computed here (BLAKE2b via
  hashlib);
- model.py: a reference model of the engine in plain Python.
`python3 cases.py` runs the model on every case, refuses to write anything
if the model disagrees with a hand-written field, fills what was left to the
model (the states of model-state cases, every chain hash and state digest),
asserts that the op x target-type x location matrix is complete (MATRIX
below) and writes the files.

The matrix section generates one case per (role, location, target type):
roles are the nine ops with move and copy counted twice (path and from),
locations are the root "", a root-level key, and a target nested three
tokens deep in a map and in an array; target types are nil, bool, int,
float, str, bin, array, map and missing. Its codes come from a rule table
written by hand (matrix_code); its states from the model.

`python3 cases.py --check` re-runs the model on the files as they are and
reports any difference (every field of every case) and any matrix gap.
tests/unit/test_engine_vectors.c checks the same matrix on the files.
"""
import base64
import copy
import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model  # noqa: E402

DOC = "t/doc"
CID = "00112233445566778899aabbccddeeff"
CID_B = "ffeeddccbbaa99887766554433221100"
CID_C = "0123456789abcdef0123456789abcdef"
V0 = 5  # default start version: results are V0+1, V0+2, ...

S = {"a": {"b": {"k1": 1, "k2": "x"}}, "arr": [1, 2, 3], "n": 5, "f": 1.5, "s": "str",
     "t": True, "z": None, "m": {}, "e": []}
DEL = object()
MODEL = "(computed by model.py)"  # an expected state left to the model


def E(base, **changes):
    """A deep copy of base with top-level keys replaced (DEL removes)."""
    d = copy.deepcopy(base)
    for k, v in changes.items():
        if v is DEL:
            del d[k]
        else:
            d[k] = v
    return d


def dkey(doc, version, counter):
    """create's derived key: base32 (lowercase, no padding) of the first 10
    bytes of BLAKE2b-256(doc id || 0x00 || u64be version || u32be counter)."""
    h = hashlib.blake2b(doc.encode() + b"\0" + struct.pack(">QI", version, counter),
                        digest_size=32).digest()
    return base64.b32encode(h[:10]).decode().lower()


def msize(v):
    """Canonical msgpack encoded size (as in value.h)."""
    def hdr(n):
        return 1 if n < 16 else 3 if n < 65536 else 5

    def ssz(n):
        return n + (1 if n < 32 else 2 if n < 256 else 3 if n < 65536 else 5)
    if v is None or isinstance(v, bool):
        return 1
    if isinstance(v, int):
        if v >= 0:
            return 1 if v <= 0x7f else 2 if v <= 0xff else 3 if v <= 0xffff else 5 if v <= 0xffffffff else 9
        return 1 if v >= -32 else 2 if v >= -128 else 3 if v >= -32768 else 5 if v >= -2**31 else 9
    if isinstance(v, float):
        return 9
    if isinstance(v, str):
        return ssz(len(v.encode()))
    if isinstance(v, list):
        return hdr(len(v)) + sum(msize(x) for x in v)
    return hdr(len(v)) + sum(ssz(len(k.encode())) + msize(x) for k, x in v.items())


def C(op, path=None, **kw):
    d = {"op": op}
    if path is not None:
        d["path"] = path
    for k, v in kw.items():
        d["from" if k == "frm" else k] = v
    return d


def flush(cmds, seq=1, client=CID, doc=DOC, base=V0, if_version=None, atomic=None):
    f = {"doc": doc, "client_id": client, "seq": seq, "base_version": base}
    if if_version is not None:
        f["if_version"] = if_version
    if atomic is not None:
        f["atomic"] = atomic
    f["commands"] = cmds
    return f


FILES = {}


def case(file, name, state, cmds, codes, exp_state, version=V0, keys=None, code="ok",
         config=None, before=None, doc=DOC, exp_version=None, **fkw):
    """codes: per command; versions follow (ok -> next version) unless the
    whole flush was refused (results empty) or aborted (all 0). exp_state
    MODEL: the expected state is the model's (the codes stay hand-written)."""
    keys = keys or {}
    results, v = [], version
    for i, c in enumerate(codes):
        r = {"code": c, "version": 0}
        if c == "ok" and code != "aborted":
            v += 1
            r["version"] = v
        if i in keys:
            r["key"] = keys[i]
        results.append(r)
    if code in ("version_mismatch", "gap", "invalid"):
        results = []
    c = {"name": name, "doc": doc}
    if config:
        c["config"] = config
    c["state"] = state
    c["version"] = version
    if before:
        c["before"] = before
    fkw.setdefault("base", version)
    c["flush"] = flush(cmds, doc=doc, **fkw)
    c["expect"] = {"code": code, "duplicate": False, "version_before": version,
                   "version_after": v if exp_version is None else exp_version,
                   "results": results, "state": exp_state,
                   "version": v if exp_version is None else exp_version}
    FILES.setdefault(file, []).append(c)
    return c


# ------------------------------------------------------------- pointers
P = "pointer"
case(P, "root pointer names the whole document", S, [C("test", "", value=S)], ["ok"], S)
case(P, "pointer without leading slash is invalid", S, [C("replace", "n", value=1)], ["invalid"], S)
case(P, "escape ~2 is invalid", S, [C("replace", "/a~2", value=1)], ["invalid"], S)
case(P, "trailing ~ is invalid", S, [C("replace", "/a~", value=1)], ["invalid"], S)
case(P, "~0 unescapes to ~", {"a~b": 1}, [C("replace", "/a~0b", value=2)], ["ok"], {"a~b": 2})
case(P, "~1 unescapes to /", {"a/b": 1}, [C("replace", "/a~1b", value=2)], ["ok"], {"a/b": 2})
case(P, "~01 is the key ~1, not /", {"~1": 1, "/": 0}, [C("replace", "/~01", value=2)], ["ok"],
     {"~1": 2, "/": 0})
case(P, "/ names the empty key", {"": 1}, [C("replace", "/", value=2)], ["ok"], {"": 2})
case(P, "empty key missing", S, [C("replace", "/", value=2)], ["path_not_found"], S)
case(P, "array index with leading zero is invalid", S, [C("replace", "/arr/01", value=9)],
     ["invalid"], S)
case(P, "array index with a letter is invalid", S, [C("replace", "/arr/1a", value=9)],
     ["invalid"], S)
case(P, "negative array index is invalid", S, [C("replace", "/arr/-1", value=9)], ["invalid"], S)
case(P, "empty array index is invalid", S, [C("replace", "/arr/", value=9)], ["invalid"], S)
case(P, "array index past the end", S, [C("replace", "/arr/3", value=9)], ["path_not_found"], S)
case(P, "huge array index", S, [C("replace", "/arr/99999999999999999999", value=9)],
     ["path_not_found"], S)
case(P, "- does not name an element for replace", S, [C("replace", "/arr/-", value=9)],
     ["path_not_found"], S)
case(P, "- inside a path names nothing", S, [C("add", "/arr/-/x", value=9)],
     ["path_not_found"], S)
case(P, "descending into an int", S, [C("replace", "/n/x", value=9)], ["type_mismatch"], S)
case(P, "descending into a string", S, [C("replace", "/s/0", value=9)], ["type_mismatch"], S)
case(P, "missing intermediate key", S, [C("add", "/q/r", value=9)], ["path_not_found"], S)
case(P, "- is an ordinary key in a map", {"m": {"-": 1}}, [C("replace", "/m/-", value=2)],
     ["ok"], {"m": {"-": 2}})
case(P, "digits are an ordinary key in a map", {"m": {"0": 1}}, [C("replace", "/m/0", value=2)],
     ["ok"], {"m": {"0": 2}})
case(P, "01 is an ordinary key in a map", {"m": {"01": 1}}, [C("replace", "/m/01", value=2)],
     ["ok"], {"m": {"01": 2}})
case(P, "index 0", S, [C("replace", "/arr/0", value=9)], ["ok"], E(S, arr=[9, 2, 3]))
case(P, "depth three", S, [C("replace", "/a/b/k1", value=7)], ["ok"],
     E(S, a={"b": {"k1": 7, "k2": "x"}}))
case(P, "non-ASCII key", {"\u00e9t\u00e9": 1}, [C("replace", "/\u00e9t\u00e9", value=2)], ["ok"],
     {"\u00e9t\u00e9": 2})
case(P, "escaped from pointer", {"a/b": 1}, [C("move", "/c", frm="/a~1b")], ["ok"], {"c": 1})
case(P, "invalid from pointer", S, [C("copy", "/c", frm="n")], ["invalid"], S)

# ------------------------------------------------------------------ add
A = "add"
case(A, "add a new key", S, [C("add", "/x", value=1)], ["ok"], E(S, x=1))
case(A, "add to an existing key replaces it", S, [C("add", "/n", value=7)], ["ok"], E(S, n=7))
case(A, "add a nested key", S, [C("add", "/a/b/k3", value=True)], ["ok"],
     E(S, a={"b": {"k1": 1, "k2": "x", "k3": True}}))
case(A, "add inserts in the middle of an array", S, [C("add", "/arr/1", value=9)], ["ok"],
     E(S, arr=[1, 9, 2, 3]))
case(A, "add inserts at the front of an array", S, [C("add", "/arr/0", value=9)], ["ok"],
     E(S, arr=[9, 1, 2, 3]))
case(A, "add at index == length appends", S, [C("add", "/arr/3", value=9)], ["ok"],
     E(S, arr=[1, 2, 3, 9]))
case(A, "add at - appends", S, [C("add", "/arr/-", value=9)], ["ok"], E(S, arr=[1, 2, 3, 9]))
case(A, "add past the end", S, [C("add", "/arr/4", value=9)], ["path_not_found"], S)
case(A, "add at the root is forbidden", S, [C("add", "", value={})], ["forbidden"], S)
case(A, "add under a missing parent", S, [C("add", "/q/x", value=1)], ["path_not_found"], S)
case(A, "add under a scalar", S, [C("add", "/n/x", value=1)], ["type_mismatch"], S)
case(A, "add without a value", S, [C("add", "/x")], ["invalid"], S)
case(A, "add null", S, [C("add", "/x", value=None)], ["ok"], E(S, x=None))
case(A, "add a container", S, [C("add", "/x", value={"y": [1, {"z": 2}]})], ["ok"],
     E(S, x={"y": [1, {"z": 2}]}))
case(A, "add keeps a float a float", S, [C("add", "/x", value=1.0)], ["ok"], E(S, x=1.0))
case(A, "add bin", S, [C("add", "/x", value={"$bin": "AQID"})], ["ok"], E(S, x={"$bin": "AQID"}))
case(A, "add into an empty array at 0", S, [C("add", "/e/0", value="v")], ["ok"], E(S, e=["v"]))
case(A, "add into an empty array at -", S, [C("add", "/e/-", value="v")], ["ok"], E(S, e=["v"]))
case(A, "add into an empty array at 1", S, [C("add", "/e/1", value="v")], ["path_not_found"], S)
case(A, "add the empty key", S, [C("add", "/", value=0)], ["ok"], E(S, **{"": 0}))
case(A, "add into an array inside a map", S, [C("add", "/a/l", value=[]), C("add", "/a/l/-", value=1)],
     ["ok", "ok"], E(S, a={"b": {"k1": 1, "k2": "x"}, "l": [1]}))
case(A, "add into a nested array element", {"l": [[1], [2]]}, [C("add", "/l/1/0", value=0)], ["ok"],
     {"l": [[1], [0, 2]]})

# --------------------------------------------------------------- remove
R = "remove"
case(R, "remove a key", S, [C("remove", "/n")], ["ok"], E(S, n=DEL))
case(R, "remove a nested key", S, [C("remove", "/a/b/k1")], ["ok"], E(S, a={"b": {"k2": "x"}}))
case(R, "remove an array item shifts the rest", S, [C("remove", "/arr/1")], ["ok"], E(S, arr=[1, 3]))
case(R, "remove the last array item", S, [C("remove", "/arr/2")], ["ok"], E(S, arr=[1, 2]))
case(R, "remove a missing key", S, [C("remove", "/q")], ["path_not_found"], S)
case(R, "remove past the end", S, [C("remove", "/arr/3")], ["path_not_found"], S)
case(R, "remove - names nothing", S, [C("remove", "/arr/-")], ["path_not_found"], S)
case(R, "remove the root is forbidden", S, [C("remove", "")], ["forbidden"], S)
case(R, "remove a subtree", S, [C("remove", "/a")], ["ok"], E(S, a=DEL))
case(R, "remove ignores a value", S, [C("remove", "/n", value=1)], ["ok"], E(S, n=DEL))
case(R, "remove twice: the second names nothing", S, [C("remove", "/n"), C("remove", "/n")],
     ["ok", "path_not_found"], E(S, n=DEL))
case(R, "remove under a scalar", S, [C("remove", "/n/x")], ["type_mismatch"], S)
case(R, "remove the last key leaves an empty map", {"a": 1}, [C("remove", "/a")], ["ok"], {})

# -------------------------------------------------------------- replace
RP = "replace"
case(RP, "replace an int", S, [C("replace", "/n", value=6)], ["ok"], E(S, n=6))
case(RP, "replace changes the type", S, [C("replace", "/n", value="six")], ["ok"], E(S, n="six"))
case(RP, "replace a missing key", S, [C("replace", "/q", value=1)], ["path_not_found"], S)
case(RP, "replace the root is forbidden", S, [C("replace", "", value={})], ["forbidden"], S)
case(RP, "replace an array item", S, [C("replace", "/arr/0", value="x")], ["ok"],
     E(S, arr=["x", 2, 3]))
case(RP, "replace without a value", S, [C("replace", "/n")], ["invalid"], S)
case(RP, "replace with a container", S, [C("replace", "/n", value={"x": 1})], ["ok"],
     E(S, n={"x": 1}))
case(RP, "replace under a missing parent", S, [C("replace", "/q/r", value=1)], ["path_not_found"], S)
case(RP, "replace null", S, [C("replace", "/z", value=0)], ["ok"], E(S, z=0))
case(RP, "replace a subtree with a scalar", S, [C("replace", "/a", value=0)], ["ok"], E(S, a=0))
case(RP, "replace int with float", S, [C("replace", "/n", value=5.0)], ["ok"], E(S, n=5.0))

# ----------------------------------------------------------------- move
M = "move"
case(M, "move a key", S, [C("move", "/m2", frm="/n")], ["ok"], E(S, n=DEL, m2=5))
case(M, "move into a map", S, [C("move", "/m/n", frm="/n")], ["ok"], E(S, n=DEL, m={"n": 5}))
case(M, "move within an array: remove, then insert", S, [C("move", "/arr/2", frm="/arr/0")], ["ok"],
     E(S, arr=[2, 3, 1]))
case(M, "move to - appends", S, [C("move", "/arr/-", frm="/arr/0")], ["ok"], E(S, arr=[2, 3, 1]))
case(M, "move index is taken after the removal", S, [C("move", "/arr/3", frm="/arr/0")],
     ["path_not_found"], S)
case(M, "move from a missing key", S, [C("move", "/x", frm="/q")], ["path_not_found"], S)
case(M, "move to a missing parent restores the source", S, [C("move", "/q/n", frm="/n")],
     ["path_not_found"], S)
case(M, "move into its own child", S, [C("move", "/a/b/x", frm="/a")], ["invalid"], S)
case(M, "move onto itself", S, [C("move", "/n", frm="/n")], ["ok"], S)
case(M, "move from the root is forbidden", S, [C("move", "/x", frm="")], ["forbidden"], S)
case(M, "move to the root is forbidden", S, [C("move", "", frm="/m")], ["forbidden"], S)
case(M, "move over an existing key", S, [C("move", "/s", frm="/n")], ["ok"], E(S, n=DEL, s=5))
case(M, "move an array item to a map", S, [C("move", "/x", frm="/arr/1")], ["ok"],
     E(S, arr=[1, 3], x=2))
case(M, "move a map value into an array", S, [C("move", "/arr/1", frm="/n")], ["ok"],
     E(S, n=DEL, arr=[1, 5, 2, 3]))
case(M, "a sibling with a common prefix is not a child", {"a": 1}, [C("move", "/ab", frm="/a")],
     ["ok"], {"ab": 1})
case(M, "move past the end of an array", S, [C("move", "/arr/5", frm="/n")], ["path_not_found"], S)
case(M, "move under a scalar", S, [C("move", "/s/x", frm="/n")], ["type_mismatch"], S)
case(M, "move without from", S, [C("move", "/x")], ["forbidden"], S)
case(M, "move a subtree", S, [C("move", "/m/a", frm="/a")], ["ok"],
     E(S, a=DEL, m={"a": {"b": {"k1": 1, "k2": "x"}}}))
case(M, "move a parent key out of its subtree", S, [C("move", "/k1", frm="/a/b/k1")], ["ok"],
     E(S, a={"b": {"k2": "x"}}, k1=1))

# ----------------------------------------------------------------- copy
CP = "copy"
case(CP, "copy a key", S, [C("copy", "/n2", frm="/n")], ["ok"], E(S, n2=5))
case(CP, "copy a subtree", S, [C("copy", "/a2", frm="/a")], ["ok"], E(S, a2=S["a"]))
case(CP, "copy into its own child is allowed", S, [C("copy", "/a/b/c", frm="/a")], ["ok"],
     E(S, a={"b": {"k1": 1, "k2": "x", "c": {"b": {"k1": 1, "k2": "x"}}}}))
case(CP, "copy the root into a child", S, [C("copy", "/snap", frm="")], ["ok"], E(S, snap=S))
case(CP, "copy to the root is forbidden", S, [C("copy", "", frm="/m")], ["forbidden"], S)
case(CP, "copy from a missing key", S, [C("copy", "/x", frm="/q")], ["path_not_found"], S)
case(CP, "copy into an array", S, [C("copy", "/arr/0", frm="/n")], ["ok"], E(S, arr=[5, 1, 2, 3]))
case(CP, "copy to -", S, [C("copy", "/arr/-", frm="/arr/0")], ["ok"], E(S, arr=[1, 2, 3, 1]))
case(CP, "copy over an existing key", S, [C("copy", "/s", frm="/n")], ["ok"], E(S, s=5))
case(CP, "copy to a missing parent", S, [C("copy", "/q/x", frm="/n")], ["path_not_found"], S)
case(CP, "copy then change the copy only", S,
     [C("copy", "/a2", frm="/a"), C("replace", "/a2/b/k1", value=2)], ["ok", "ok"],
     E(S, a2={"b": {"k1": 2, "k2": "x"}}))

# ----------------------------------------------------------------- test
T = "test"
case(T, "test an equal int", S, [C("test", "/n", value=5)], ["ok"], S)
case(T, "int 5 is not float 5.0", S, [C("test", "/n", value=5.0)], ["test_failed"], S)
case(T, "test an equal float", S, [C("test", "/f", value=1.5)], ["ok"], S)
case(T, "test an equal string", S, [C("test", "/s", value="str")], ["ok"], S)
case(T, "test an unequal string", S, [C("test", "/s", value="Str")], ["test_failed"], S)
case(T, "maps compare by content", S, [C("test", "/a", value={"b": {"k2": "x", "k1": 1}})], ["ok"], S)
case(T, "a map with an extra key is unequal", S,
     [C("test", "/a", value={"b": {"k2": "x", "k1": 1, "k3": 0}})], ["test_failed"], S)
case(T, "arrays compare in order", S, [C("test", "/arr", value=[1, 2, 3])], ["ok"], S)
case(T, "array order matters", S, [C("test", "/arr", value=[3, 2, 1])], ["test_failed"], S)
case(T, "test null", S, [C("test", "/z", value=None)], ["ok"], S)
case(T, "true is not 1", S, [C("test", "/t", value=1)], ["test_failed"], S)
case(T, "test a missing key", S, [C("test", "/q", value=1)], ["path_not_found"], S)
case(T, "test without a value", S, [C("test", "/n")], ["invalid"], S)
case(T, "a failed test consumes no version", S,
     [C("test", "/n", value=6), C("replace", "/n", value=6), C("test", "/n", value=6)],
     ["test_failed", "ok", "ok"], E(S, n=6))
case(T, "test an array element", S, [C("test", "/arr/1", value=2)], ["ok"], S)
case(T, "test the empty map", S, [C("test", "/m", value={})], ["ok"], S)
case(T, "empty map is not empty array", S, [C("test", "/m", value=[])], ["test_failed"], S)

# ----------------------------------------------------------------- incr
I = "incr"
case(I, "incr an int", S, [C("incr", "/n", value=3)], ["ok"], E(S, n=8))
case(I, "incr by a negative int", S, [C("incr", "/n", value=-10)], ["ok"], E(S, n=-5))
case(I, "incr a missing key creates it", S, [C("incr", "/cnt", value=1)], ["ok"], E(S, cnt=1))
case(I, "incr a missing key by a float", S, [C("incr", "/cnt", value=0.5)], ["ok"], E(S, cnt=0.5))
case(I, "int plus float is a float", S, [C("incr", "/n", value=0.5)], ["ok"], E(S, n=5.5))
case(I, "float plus int is a float", S, [C("incr", "/f", value=1)], ["ok"], E(S, f=2.5))
case(I, "float plus float", S, [C("incr", "/f", value=0.25)], ["ok"], E(S, f=1.75))
case(I, "int plus float 0.0 becomes a float", S, [C("incr", "/n", value=0.0)], ["ok"], E(S, n=5.0))
case(I, "int overflow", {"big": 2**63 - 1}, [C("incr", "/big", value=1)], ["too_large"],
     {"big": 2**63 - 1})
case(I, "int underflow", {"small": -2**63}, [C("incr", "/small", value=-1)], ["too_large"],
     {"small": -2**63})
case(I, "int at the edge", {"big": 2**63 - 2}, [C("incr", "/big", value=1)], ["ok"],
     {"big": 2**63 - 1})
case(I, "float overflow to infinity", {"x": 1.7976931348623157e308},
     [C("incr", "/x", value=1.7976931348623157e308)], ["too_large"], {"x": 1.7976931348623157e308})
case(I, "incr a string", S, [C("incr", "/s", value=1)], ["type_mismatch"], S)
case(I, "incr a bool", S, [C("incr", "/t", value=1)], ["type_mismatch"], S)
case(I, "incr null", S, [C("incr", "/z", value=1)], ["type_mismatch"], S)
case(I, "incr a map", S, [C("incr", "/a", value=1)], ["type_mismatch"], S)
case(I, "incr the root", S, [C("incr", "", value=1)], ["type_mismatch"], S)
case(I, "incr by a string", S, [C("incr", "/n", value="1")], ["invalid"], S)
case(I, "incr by null", S, [C("incr", "/n", value=None)], ["invalid"], S)
case(I, "incr without a value", S, [C("incr", "/n")], ["invalid"], S)
case(I, "incr under a missing parent", S, [C("incr", "/q/c", value=1)], ["path_not_found"], S)
case(I, "incr an array element", S, [C("incr", "/arr/0", value=1)], ["ok"], E(S, arr=[2, 2, 3]))
case(I, "incr past the end of an array", S, [C("incr", "/arr/3", value=1)], ["path_not_found"], S)
case(I, "incr - names nothing", S, [C("incr", "/arr/-", value=1)], ["path_not_found"], S)
case(I, "incr by zero still takes a version", S, [C("incr", "/n", value=0)], ["ok"], S)
case(I, "incr twice", S, [C("incr", "/n", value=1), C("incr", "/n", value=1)], ["ok", "ok"],
     E(S, n=7))
case(I, "incr creates a nested key", S, [C("incr", "/a/b/k3", value=2)], ["ok"],
     E(S, a={"b": {"k1": 1, "k2": "x", "k3": 2}}))

# ---------------------------------------------------------------- merge
MG = "merge"
case(MG, "merge into a map", S, [C("merge", "/a/b", value={"k2": "y", "k3": 3})], ["ok"],
     E(S, a={"b": {"k1": 1, "k2": "y", "k3": 3}}))
case(MG, "merge into the root", S, [C("merge", "", value={"n": 6, "new": 1})], ["ok"],
     E(S, n=6, new=1))
case(MG, "merge into a missing key creates it", S, [C("merge", "/nm", value={"x": 1})], ["ok"],
     E(S, nm={"x": 1}))
case(MG, "merge the empty map", S, [C("merge", "/a", value={})], ["ok"], S)
case(MG, "merge the empty map into a missing key", S, [C("merge", "/nm", value={})], ["ok"],
     E(S, nm={}))
case(MG, "merge into an int", S, [C("merge", "/n", value={"x": 1})], ["type_mismatch"], S)
case(MG, "merge into an array", S, [C("merge", "/arr", value={"x": 1})], ["type_mismatch"], S)
case(MG, "merge an array", S, [C("merge", "/a", value=[1])], ["invalid"], S)
case(MG, "merge a scalar", S, [C("merge", "/a", value=1)], ["invalid"], S)
case(MG, "merge without a value", S, [C("merge", "/a")], ["invalid"], S)
case(MG, "merge stores null, it does not delete", S, [C("merge", "/a/b", value={"k1": None})],
     ["ok"], E(S, a={"b": {"k1": None, "k2": "x"}}))
case(MG, "merge is shallow", S, [C("merge", "/a", value={"b": {"k9": 9}})], ["ok"],
     E(S, a={"b": {"k9": 9}}))
case(MG, "merge under a missing parent", S, [C("merge", "/q/r", value={"x": 1})],
     ["path_not_found"], S)
case(MG, "merge past the end of an array", S, [C("merge", "/arr/5", value={"x": 1})],
     ["path_not_found"], S)
case(MG, "merge into a map in an array", {"l": [{"x": 1}]}, [C("merge", "/l/0", value={"y": 2})],
     ["ok"], {"l": [{"x": 1, "y": 2}]})

# --------------------------------------------------------------- create
CR = "create"
k6 = dkey(DOC, V0 + 1, 0)
case(CR, "create derives a key", S, [C("create", "/m", value={"t": 1})], ["ok"],
     E(S, m={k6: {"t": 1}}), keys={0: k6})
case(CR, "create honours a free proposed key", S, [C("create", "/m", value=1, key="mine")], ["ok"],
     E(S, m={"mine": 1}), keys={0: "mine"})
case(CR, "create derives a key when the proposed one is taken", S,
     [C("create", "", value=1, key="n")], ["ok"], E(S, **{k6: 1}), keys={0: k6})
case(CR, "create in the root", S, [C("create", "", value="r")], ["ok"], E(S, **{k6: "r"}),
     keys={0: k6})
case(CR, "create in an int", S, [C("create", "/n", value=1)], ["type_mismatch"], S)
case(CR, "create in an array", S, [C("create", "/arr", value=1)], ["type_mismatch"], S)
case(CR, "create in a missing map", S, [C("create", "/q", value=1)], ["path_not_found"], S)
case(CR, "create without a value", S, [C("create", "/m")], ["invalid"], S)
k7 = dkey(DOC, V0 + 2, 0)
case(CR, "two creates get keys from their own versions", S,
     [C("create", "/m", value=1), C("create", "/m", value=2)], ["ok", "ok"],
     E(S, m={k6: 1, k7: 2}), keys={0: k6, 1: k7})
k6c1 = dkey(DOC, V0 + 1, 1)
case(CR, "a taken derived key moves to the next counter", E(S, m={k6: 0}),
     [C("create", "/m", value=1)], ["ok"], E(S, m={k6: 0, k6c1: 1}), keys={0: k6c1})
case(CR, "the empty proposed key", S, [C("create", "/m", value=1, key="")], ["ok"],
     E(S, m={"": 1}), keys={0: ""})
ko = dkey("t/other", 1, 0)
case(CR, "the key depends on the document id", {}, [C("create", "", value=1)], ["ok"], {ko: 1},
     version=0, doc="t/other", keys={0: ko})
kfail = dkey(DOC, V0 + 1, 0)
case(CR, "a failed command before create does not shift its version", S,
     [C("remove", "/q"), C("create", "/m", value=1)], ["path_not_found", "ok"],
     E(S, m={kfail: 1}), keys={1: kfail})

# ---------------------------------------------------------------- flush
F = "flush"
case(F, "if_version matches", S, [C("replace", "/n", value=6)], ["ok"], E(S, n=6), if_version=V0)
case(F, "if_version lower than the version", S, [C("replace", "/n", value=6)], ["ok"], S,
     if_version=V0 - 1, code="version_mismatch", exp_version=V0)
case(F, "if_version higher than the version", S, [C("replace", "/n", value=6)], ["ok"], S,
     if_version=V0 + 1, code="version_mismatch", exp_version=V0)
case(F, "if_version mismatch on an atomic flush", S, [C("replace", "/n", value=6)], ["ok"], S,
     if_version=0, atomic=True, code="version_mismatch", exp_version=V0)
case(F, "atomic: all commands apply", S,
     [C("replace", "/n", value=6), C("add", "/x", value=1), C("remove", "/z")],
     ["ok", "ok", "ok"], E(S, n=6, x=1, z=DEL), atomic=True)
case(F, "atomic: a failure in the middle aborts the rest", S,
     [C("replace", "/n", value=1), C("test", "/n", value=2), C("replace", "/s", value="t")],
     ["aborted", "test_failed", "aborted"], S, atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: the first command fails", S,
     [C("remove", "/q"), C("replace", "/n", value=1)], ["path_not_found", "aborted"], S,
     atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: a move is undone", S,
     [C("move", "/m/n", frm="/n"), C("add", "/arr/0", value=0), C("remove", "/q")],
     ["aborted", "aborted", "path_not_found"], S, atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: a move over an existing key is undone", S,
     [C("move", "/s", frm="/n"), C("test", "/s", value="str")],
     ["aborted", "test_failed"], S, atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: a create is undone", S,
     [C("create", "/m", value=1), C("create", "/m", value=2, key="p"), C("incr", "/s", value=1)],
     ["aborted", "aborted", "type_mismatch"], S, atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: merge and incr are undone", S,
     [C("merge", "/a/b", value={"k1": 9, "k9": 9}), C("incr", "/cnt", value=1),
      C("incr", "/n", value=1), C("merge", "", value={"n": 0, "zz": 1}),
      C("replace", "/zz/q", value=1)],
     ["aborted", "aborted", "aborted", "aborted", "type_mismatch"], S, atomic=True, code="aborted",
     exp_version=V0)
case(F, "atomic: array edits are undone in order", S,
     [C("add", "/arr/0", value=0), C("remove", "/arr/2"), C("replace", "/arr/0", value="x"),
      C("move", "/arr/-", frm="/arr/0"), C("copy", "/arr/1", frm="/a"),
      C("test", "/arr/0", value=999)],
     ["aborted"] * 5 + ["test_failed"], S, atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: a later command sees the earlier ones", S,
     [C("add", "/x", value={}), C("add", "/x/y", value=1), C("test", "/x", value={"y": 1})],
     ["ok", "ok", "ok"], E(S, x={"y": 1}), atomic=True)
case(F, "atomic false behaves as not atomic", S,
     [C("replace", "/n", value=1), C("remove", "/q"), C("replace", "/s", value="t")],
     ["ok", "path_not_found", "ok"], E(S, n=1, s="t"), atomic=False)
case(F, "not atomic: rejected commands are skipped", S,
     [C("replace", "/n", value=1), C("test", "/n", value=2), C("replace", "/s", value="t")],
     ["ok", "test_failed", "ok"], E(S, n=1, s="t"))
case(F, "an empty flush", S, [], [], S)
case(F, "an unknown op is invalid", S, [C("frobnicate", "/n", value=1)], ["invalid"], S)
case(F, "seq 0 is invalid", S, [C("replace", "/n", value=6)], [], S, seq=0, code="invalid",
     exp_version=V0)
case(F, "a sequence of mixed commands", {},
     [C("add", "/list", value=[]), C("add", "/list/-", value={"t": "a", "done": False}),
      C("add", "/list/-", value={"t": "b", "done": False}),
      C("replace", "/list/0/done", value=True), C("move", "/list/0", frm="/list/1"),
      C("copy", "/first", frm="/list/0"), C("incr", "/count", value=2),
      C("merge", "/meta", value={"owner": "u1"}), C("test", "/list/1/t", value="a"),
      C("remove", "/first")],
     ["ok"] * 10,
     {"list": [{"t": "b", "done": False}, {"t": "a", "done": True}], "count": 2,
      "meta": {"owner": "u1"}}, version=0)
case(F, "a flush starting from version 0", {}, [C("add", "/x", value=1)], ["ok"], {"x": 1},
     version=0)

# ---------------------------------------------------------------- dedup
D = "dedup"


def dcase(name, before, fl, exp, state=S, version=V0, config=None):
    c = {"name": name, "doc": DOC}
    if config:
        c["config"] = config
    c.update({"state": state, "version": version, "before": before, "flush": fl, "expect": exp})
    FILES.setdefault(D, []).append(c)


def ex(code, dup, vb, va, results, state, version):
    return {"code": code, "duplicate": dup, "version_before": vb, "version_after": va,
            "results": results, "state": state, "version": version}


R6 = [{"code": "ok", "version": 6}]
dcase("a repeated seq gets the original outcome and applies nothing",
      [flush([C("replace", "/n", value=6)])], flush([C("replace", "/n", value=7)]),
      ex("ok", True, 5, 6, R6, E(S, n=6), 6))
dcase("a repeated seq after other clients wrote",
      [flush([C("replace", "/n", value=6)]), flush([C("incr", "/n", value=1)], client=CID_B)],
      flush([C("replace", "/n", value=6)]),
      ex("ok", True, 5, 6, R6, E(S, n=7), 7))
dcase("an older seq is stale: duplicate with no results",
      [flush([C("replace", "/n", value=6)]), flush([C("replace", "/n", value=7)], seq=2)],
      flush([C("replace", "/n", value=6)]),
      ex("ok", True, 7, 7, [], E(S, n=7), 7))
dcase("seq > last + 1 is a gap",
      [flush([C("replace", "/n", value=6)])], flush([C("replace", "/n", value=7)], seq=3),
      ex("gap", False, 6, 6, [], E(S, n=6), 6))
dcase("a gap is not recorded",
      [flush([C("replace", "/n", value=6)]), flush([C("replace", "/n", value=7)], seq=3)],
      flush([C("replace", "/n", value=8)], seq=2),
      ex("ok", False, 6, 7, [{"code": "ok", "version": 7}], E(S, n=8), 7))
dcase("the next seq applies",
      [flush([C("replace", "/n", value=6)])], flush([C("replace", "/n", value=7)], seq=2),
      ex("ok", False, 6, 7, [{"code": "ok", "version": 7}], E(S, n=7), 7))
dcase("an unknown client starts at seq 1: seq 2 with no eviction is a gap", [],
      flush([C("replace", "/n", value=7)], seq=2),
      ex("gap", False, 5, 5, [], S, 5))
dcase("an unknown client's later seq is a gap while other clients are known",
      [flush([C("replace", "/n", value=6)], client=CID_B)],
      flush([C("replace", "/n", value=7)], seq=7),
      ex("gap", False, 6, 6, [], E(S, n=6), 6))
dcase("an unknown client's gap is not recorded: its seq 1 then applies",
      [flush([C("replace", "/n", value=6)], seq=2)],
      flush([C("replace", "/n", value=7)]),
      ex("ok", False, 5, 6, R6, E(S, n=7), 6))
dcase("after an eviction an unknown client may start at any seq",
      [flush([C("incr", "/n", value=1)], client=CID_B),
       flush([C("incr", "/n", value=1)], client=CID_C)],
      flush([C("incr", "/n", value=1)], seq=2),
      ex("ok", False, 7, 8, [{"code": "ok", "version": 8}], E(S, n=8), 8),
      config={"max_dedup": 1})
dcase("an unknown client with seq 1 applies when nothing was evicted",
      [flush([C("replace", "/n", value=6)], client=CID_B)],
      flush([C("replace", "/n", value=7)]),
      ex("ok", False, 6, 7, [{"code": "ok", "version": 7}], E(S, n=7), 7))
dcase("a version_mismatch outcome is repeated",
      [flush([C("replace", "/n", value=6)], if_version=99)],
      flush([C("replace", "/n", value=6)], if_version=5),
      ex("version_mismatch", True, 5, 5, [], S, 5))
dcase("the seq after a version_mismatch applies",
      [flush([C("replace", "/n", value=6)], if_version=99)],
      flush([C("replace", "/n", value=6)], seq=2, if_version=5),
      ex("ok", False, 5, 6, R6, E(S, n=6), 6))
dcase("an aborted outcome is repeated",
      [flush([C("replace", "/n", value=6), C("remove", "/q")], atomic=True)],
      flush([C("replace", "/n", value=6)], atomic=True),
      ex("aborted", True, 5, 5, [{"code": "aborted", "version": 0},
                                 {"code": "path_not_found", "version": 0}], S, 5))
dcase("a create outcome is repeated with its key",
      [flush([C("remove", "/q"), C("create", "/m", value=1)])],
      flush([C("create", "/m", value=1)]),
      ex("ok", True, 5, 6, [{"code": "path_not_found", "version": 0},
                            {"code": "ok", "version": 6, "key": k6}], E(S, m={k6: 1}), 6))
dcase("a create outcome with the empty proposed key is repeated with its key",
      [flush([C("create", "/m", value=1, key="")])],
      flush([C("create", "/m", value=1, key="")]),
      ex("ok", True, 5, 6, [{"code": "ok", "version": 6, "key": ""}], E(S, m={"": 1}), 6))
dcase("a partly rejected outcome is repeated",
      [flush([C("replace", "/n", value=6), C("remove", "/q"), C("incr", "/n", value=1)])],
      flush([]),
      ex("ok", True, 5, 7, [{"code": "ok", "version": 6}, {"code": "path_not_found", "version": 0},
                            {"code": "ok", "version": 7}], E(S, n=7), 7))
dcase("seq 0 is invalid and not recorded",
      [flush([C("replace", "/n", value=6)], seq=0)], flush([C("replace", "/n", value=7)]),
      ex("ok", False, 5, 6, R6, E(S, n=7), 6))
dcase("clients are independent",
      [flush([C("replace", "/n", value=6)])], flush([C("replace", "/n", value=7)], client=CID_B),
      ex("ok", False, 6, 7, [{"code": "ok", "version": 7}], E(S, n=7), 7))
dcase("eviction: the evicted client's old seq applies again",
      [flush([C("incr", "/n", value=1)]), flush([C("incr", "/n", value=1)], client=CID_B),
       flush([C("incr", "/n", value=1)], client=CID_C)],
      flush([C("incr", "/n", value=1)]),
      ex("ok", False, 8, 9, [{"code": "ok", "version": 9}], E(S, n=9), 9),
      config={"max_dedup": 2})
dcase("eviction takes the entry with the oldest last flush",
      [flush([C("incr", "/n", value=1)]), flush([C("incr", "/n", value=1)], client=CID_B),
       flush([C("incr", "/n", value=1)], seq=2), flush([C("incr", "/n", value=1)], client=CID_C)],
      flush([C("incr", "/n", value=1)], seq=2),
      ex("ok", True, 7, 8, [{"code": "ok", "version": 8}], E(S, n=9), 9),
      config={"max_dedup": 2})
dcase("eviction: the evicted client is unknown, not a gap",
      [flush([C("incr", "/n", value=1)], client=CID_B), flush([C("incr", "/n", value=1)]),
       flush([C("incr", "/n", value=1)], client=CID_C)],
      flush([C("incr", "/n", value=1)], client=CID_B, seq=5),
      ex("ok", False, 8, 9, [{"code": "ok", "version": 9}], E(S, n=9), 9),
      config={"max_dedup": 2})
dcase("a duplicate of a rejected-only outcome",
      [flush([C("remove", "/q")])], flush([C("remove", "/q")]),
      ex("ok", True, 5, 5, [{"code": "path_not_found", "version": 0}], S, 5))
dcase("a duplicate answer does not refresh eviction order",
      [flush([C("incr", "/n", value=1)]), flush([C("incr", "/n", value=1)], client=CID_B),
       flush([C("incr", "/n", value=1)]), flush([C("incr", "/n", value=1)], client=CID_C)],
      flush([C("incr", "/n", value=1)]),
      ex("ok", False, 8, 9, [{"code": "ok", "version": 9}], E(S, n=9), 9),
      config={"max_dedup": 2})

# --------------------------------------------------------------- limits
L = "limits"
SMALL = {"a": {"b": {}}, "s": "x", "n": 1}
sz = msize(SMALL)
case(L, "add over the size cap", SMALL, [C("add", "/big", value="y" * 100)], ["too_large"], SMALL,
     config={"max_state_bytes": sz + 50})
fit = sz + msize("y" * 40) + 4  # key "big" is a fixstr of 4 bytes
case(L, "add exactly up to the size cap", SMALL, [C("add", "/big", value="y" * 40)], ["ok"],
     E(SMALL, big="y" * 40), config={"max_state_bytes": fit})
case(L, "one byte over the size cap", SMALL, [C("add", "/big", value="y" * 40)], ["too_large"],
     SMALL, config={"max_state_bytes": fit - 1})
case(L, "copy over the size cap", SMALL,
     [C("add", "/p", value="z" * 30), C("copy", "/q", frm="/p")], ["ok", "too_large"],
     E(SMALL, p="z" * 30), config={"max_state_bytes": sz + 40})
case(L, "merge over the size cap", SMALL, [C("merge", "", value={"x": "w" * 60})], ["too_large"],
     SMALL, config={"max_state_bytes": sz + 50})
case(L, "incr int to float grows the state over the cap", SMALL, [C("incr", "/n", value=0.5)],
     ["too_large"], SMALL, config={"max_state_bytes": sz})
case(L, "replace with something smaller under a tight cap", SMALL,
     [C("replace", "/s", value="")], ["ok"], E(SMALL, s=""), config={"max_state_bytes": sz})
case(L, "create over the size cap", SMALL, [C("create", "/a", value="c" * 64)], ["too_large"],
     SMALL, config={"max_state_bytes": sz + 40})
case(L, "too_large in an atomic flush aborts it", SMALL,
     [C("replace", "/n", value=2), C("add", "/big", value="y" * 100)], ["aborted", "too_large"],
     SMALL, atomic=True, code="aborted", exp_version=V0, config={"max_state_bytes": sz + 50})
case(L, "removing frees room for a later add", SMALL,
     [C("add", "/big", value="y" * 20), C("remove", "/s"), C("add", "/big2", value="y" * 2)],
     ["too_large", "ok", "ok"], E(SMALL, s=DEL, big2="yy"), config={"max_state_bytes": sz + 5})
case(L, "nesting over the depth cap", SMALL, [C("add", "/a/b/x", value={"y": 1})], ["too_large"],
     SMALL, config={"max_depth": 3})
case(L, "a scalar at the depth cap", SMALL, [C("add", "/a/b/x", value=1)], ["ok"],
     E(SMALL, a={"b": {"x": 1}}), config={"max_depth": 3})
case(L, "a container up to the depth cap", SMALL, [C("add", "/a/x", value={"y": 1})], ["ok"],
     E(SMALL, a={"b": {}, "x": {"y": 1}}), config={"max_depth": 3})
case(L, "merge over the depth cap", SMALL, [C("merge", "/a/b", value={"x": []})], ["too_large"],
     SMALL, config={"max_depth": 3})
case(L, "create over the depth cap", SMALL, [C("create", "/a/b", value=[])], ["too_large"], SMALL,
     config={"max_depth": 3})
case(L, "move over the depth cap restores the source", {"a": {"b": {}}, "c": {"d": {}}},
     [C("move", "/a/b/c", frm="/c")], ["too_large"], {"a": {"b": {}}, "c": {"d": {}}},
     config={"max_depth": 3})
case(L, "copy over the depth cap", {"a": {"b": {}}, "c": {"d": {}}},
     [C("copy", "/a/b/c", frm="/c")], ["too_large"], {"a": {"b": {}}, "c": {"d": {}}},
     config={"max_depth": 3})



# ---------------------------------------------------------------- matrix
# Every role on every target type at every location. A role is an op on
# its path, or move/copy on its from ("move from", "copy from").
X = "matrix"
ROLES = ("add", "remove", "replace", "move", "move from", "copy", "copy from", "test", "incr",
         "merge", "create")
TYPES = ("nil", "bool", "int", "float", "str", "bin", "array", "map", "missing")
LOCATIONS = ("root", "top", "nested map", "nested array")
SAMPLE = {"nil": None, "bool": False, "int": 7, "float": 2.0, "str": "s",
          "bin": {"$bin": "Ymlu"}, "array": [1, "a"], "map": {"x": 1}}
# a value of another type that a careless engine could take for the sample
LOOKALIKE = {"nil": False, "bool": 0, "int": 7.0, "float": 2, "str": {"$bin": "cw=="},
             "bin": "bin", "array": {"0": 1, "1": "a"}, "map": {"x": 1.0}}
SRC = {"s": [True]}   # the source of move/copy onto the target
V_PUT = {"v": [1]}    # add / replace value
V_MERGE = {"x": 2, "y": None}


def matrix_code(role, parent, t):
    """The expected code by ENGINE.md, written by hand: role on a target of
    type t (or missing) whose container is the root itself ("root"), a map
    or an array. A missing array element is index == length."""
    if parent == "root":
        return {"add": "forbidden", "remove": "forbidden", "replace": "forbidden",
                "move": "forbidden", "move from": "forbidden", "copy": "forbidden",
                "copy from": "ok", "test": "ok", "test unequal": "test_failed",
                "incr": "type_mismatch", "merge": "ok", "create": "ok"}[role]
    if t == "missing":
        if role in ("add", "move", "copy"):     # add-like targets: a new key, index == length
            return "ok"
        if role in ("incr", "merge") and parent == "map":  # upsert: a new key only
            return "ok"
        return "path_not_found"
    if role == "test unequal":
        return "test_failed"
    if role == "incr":
        return "ok" if t in ("int", "float") else "type_mismatch"
    if role in ("merge", "create"):
        return "ok" if t == "map" else "type_mismatch"
    return "ok"


def matrix_cmd(role, path, value):
    return {"add": lambda: C("add", path, value=V_PUT),
            "remove": lambda: C("remove", path),
            "replace": lambda: C("replace", path, value=V_PUT),
            "move": lambda: C("move", path, frm="/src"),
            "move from": lambda: C("move", "/dst", frm=path),
            "copy": lambda: C("copy", path, frm="/src"),
            "copy from": lambda: C("copy", "/dst", frm=path),
            "test": lambda: C("test", path, value=value),
            "test unequal": lambda: C("test", path, value=value),
            "incr": lambda: C("incr", path, value=1),
            "merge": lambda: C("merge", path, value=V_MERGE),
            "create": lambda: C("create", path, value="c")}[role]()


def matrix_case(role, where, t, state, path, parent, value):
    if role in ("move", "copy"):
        state = dict(state, src=copy.deepcopy(SRC))
    code = matrix_code(role, parent, t)
    keys = {0: dkey(DOC, V0 + 1, 0)} if role == "create" and code == "ok" else None
    case(X, f"{role}: {t} target at {where} ({path or 'the root'})", state,
         [matrix_cmd(role, path, value)], [code], MODEL, keys=keys)


def matrix():
    root = {"k": {"x": 1}, "z": 0}
    for role in ROLES + ("test unequal",):
        value = copy.deepcopy(root) if role == "test" else E(root, z=0.0)
        matrix_case(role, "the root", "map", root, "", "root", value)
    for where in ("a root-level key", "a key nested in maps", "an index nested in an array",
                  "a key of a map inside an array"):
        for t in TYPES:
            for role in ROLES + ("test unequal",):
                if t == "missing" and role == "test unequal":
                    continue
                v = SAMPLE.get(t)
                here = {"z": 0} if t == "missing" else {"k": copy.deepcopy(v), "z": 0}
                parent = "map"
                if where == "a root-level key":
                    state, path = here, "/k"
                elif where == "a key nested in maps":
                    state, path = {"o": {"p": here}}, "/o/p/k"
                elif where == "an index nested in an array":
                    # missing: the index == length (add-like targets append there)
                    items = ["a", "z"] if t == "missing" else ["a", copy.deepcopy(v), "z"]
                    path = "/o/l/2" if t == "missing" else "/o/l/1"
                    state, parent = {"o": {"l": items}}, "array"
                else:
                    state, path = {"l": [0, here]}, "/l/1/k"
                value = LOOKALIKE.get(t) if role == "test unequal" else copy.deepcopy(v)
                matrix_case(role, where, t, state, path, parent, value)


matrix()

# the depth cap for every op that places a value: exactly at the cap, and one over
DS = {"o": {"p": {}}, "l": [[]], "src1": {"a": 1}, "src2": {"a": [1]}}  # depth 3
D4 = {"max_depth": 4}
for op, path, kw, fits, over in (
        ("add", "/o/p/x", "value", {"a": 1}, {"a": [1]}),
        ("add", "/l/0/0", "value", [1], [[1]]),
        ("replace", "/o/p", "value", {"a": [1]}, {"a": {"b": [1]}}),
        ("merge", "/o/p", "value", {"x": [1]}, {"x": [[1]]}),
        ("merge", "/o/q", "value", {"x": [1]}, {"x": [[1]]}),
        ("create", "/o/p", "value", [1], [[1]])):
    for v, code in ((fits, "ok"), (over, "too_large")):
        case(L, f"depth cap: {op} {json.dumps(v)} at {path} ({code})", DS,
             [C(op, path, **{kw: v})], [code], MODEL if code == "ok" else DS, config=D4,
             keys={0: k6} if op == "create" and code == "ok" else None)
for op in ("move", "copy"):
    for src, code in (("/src1", "ok"), ("/src2", "too_large")):
        case(L, f"depth cap: {op} {src} to /o/p/x ({code})", DS, [C(op, "/o/p/x", frm=src)],
             [code], MODEL if code == "ok" else DS, config=D4)
case(L, "depth cap: copy the root to a root-level key, at the cap", DS, [C("copy", "/x", frm="")],
     ["ok"], E(DS, x=DS), config=D4)
case(L, "depth cap: copy the root one level down, over the cap", DS,
     [C("copy", "/o/x", frm="")], ["too_large"], DS, config=D4)
case(L, "size cap: move to a longer key", {"a": 1}, [C("move", "/" + "k" * 40, frm="/a")],
     ["too_large"], {"a": 1}, config={"max_state_bytes": msize({"a": 1}) + 10})
case(L, "size cap: move to a key of the same length", {"a": 1}, [C("move", "/b", frm="/a")],
     ["ok"], {"b": 1}, config={"max_state_bytes": msize({"a": 1})})
case(L, "size cap: add into a nested array", {"l": [[]]}, [C("add", "/l/0/-", value="x" * 20)],
     ["too_large"], {"l": [[]]}, config={"max_state_bytes": msize({"l": [[]]}) + 10})
case(L, "size cap: incr an int into a wider int", {"n": 127}, [C("incr", "/n", value=1)],
     ["too_large"], {"n": 127}, config={"max_state_bytes": msize({"n": 127})})
case(L, "size cap: a passing test at a full state", {"n": 127}, [C("test", "/n", value=127)],
     ["ok"], {"n": 127}, config={"max_state_bytes": msize({"n": 127})})
case(L, "size cap: remove always fits", {"n": 127, "s": "abc"}, [C("remove", "/s")], ["ok"],
     {"n": 127}, config={"max_state_bytes": msize({"n": 127, "s": "abc"})})

# atomic rollback through escaped keys, nil targets and nested arrays
AE = {"a/b": {"c~d": {"x": None, "l": [1, {"k": None}]}}, "e/f": []}
case(F, "atomic: edits under escaped keys are undone", AE,
     [C("add", "/a~1b/c~0d/y", value=1), C("move", "/e~1f/-", frm="/a~1b/c~0d/x"),
      C("merge", "/a~1b/c~0d/l/1", value={"k": 2, "n": None}), C("incr", "/a~1b/c~0d/l/0", value=1),
      C("create", "/a~1b/c~0d", value=[], key="~/"), C("copy", "/e~1f/0", frm="/a~1b"),
      C("remove", "/a~1b/c~0d/l/0"), C("merge", "/a~1b/c~0d/l/0/n", value={})],
     ["aborted"] * 7 + ["type_mismatch"], AE, atomic=True, code="aborted", exp_version=V0)
case(F, "atomic: the same edits apply when nothing fails", AE,
     [C("add", "/a~1b/c~0d/y", value=1), C("move", "/e~1f/-", frm="/a~1b/c~0d/x"),
      C("merge", "/a~1b/c~0d/l/1", value={"k": 2, "n": None}), C("incr", "/a~1b/c~0d/l/0", value=1),
      C("create", "/a~1b/c~0d", value=[], key="~/"), C("copy", "/e~1f/0", frm="/a~1b/c~0d/l"),
      C("remove", "/a~1b/c~0d/l/0")],
     ["ok"] * 7, {"a/b": {"c~d": {"y": 1, "l": [{"k": 2, "n": None}], "~/": []}},
                  "e/f": [[2, {"k": 2, "n": None}], None]}, atomic=True, keys={4: "~/"})
case(F, "atomic: merge onto nil fails the flush", {"z": None, "n": 1},
     [C("incr", "/n", value=1), C("merge", "/z", value={"a": 1})], ["aborted", "type_mismatch"],
     {"z": None, "n": 1}, atomic=True, code="aborted", exp_version=V0)


# ---------------------------------------------------------------- index
# Array index forms for every role, on {"o": {"l": ["a", "b"]}}: "-", index
# == length, past the end, leading zeros and other non-indexes, a huge index.
IX = "index"
LS = {"o": {"l": ["a", "b"]}, "src": "S"}
ADD_LIKE = ("add", "move", "copy")
for form, what in (("-", "-"), ("2", "index == length"), ("3", "index past the end"),
                   ("01", "leading zero"), ("00", "double zero"),
                   ("18446744073709551616", "a huge index")):
    for role in ROLES:
        if form in ("01", "00"):
            code = "invalid"
        elif form in ("-", "2") and role in ADD_LIKE:
            code = "ok"
        else:
            code = "path_not_found"
        p = "/o/l/" + form
        cmd = {"add": C("add", p, value="v"), "remove": C("remove", p),
               "replace": C("replace", p, value="v"), "move": C("move", p, frm="/src"),
               "move from": C("move", "/dst", frm=p), "copy": C("copy", p, frm="/src"),
               "copy from": C("copy", "/dst", frm=p), "test": C("test", p, value="a"),
               "incr": C("incr", p, value=1), "merge": C("merge", p, value={"x": 1}),
               "create": C("create", p, value="c")}[role]
        case(IX, f"{role} at {what} ({p})", LS, [cmd], [code], MODEL)
for tok in ("-0", "+1", "1a", " 1", "1 ", "1.0", "0x1", "1e0", "", "\u0661"):
    case(IX, f"{tok!r} is not an index", LS, [C("replace", "/o/l/" + tok, value="v")],
         ["invalid"], LS)
case(IX, "0 is an index", LS, [C("replace", "/o/l/0", value="v")], ["ok"],
     E(LS, o={"l": ["v", "b"]}))
case(IX, "a leading zero inside a pointer", {"l": [{"k": 1}]}, [C("add", "/l/00/k", value=2)],
     ["invalid"], {"l": [{"k": 1}]})
case(IX, "- inside a pointer names nothing, even for add", LS, [C("add", "/o/l/-/x", value=1)],
     ["path_not_found"], LS)
case(IX, "- inside a pointer for merge", {"l": [{}]}, [C("merge", "/l/-/x", value={})],
     ["path_not_found"], {"l": [{}]})
case(IX, "index 0 of an empty array: add", {"l": []}, [C("add", "/l/0", value=1)], ["ok"],
     {"l": [1]})
case(IX, "index 0 of an empty array: replace", {"l": []}, [C("replace", "/l/0", value=1)],
     ["path_not_found"], {"l": []})
case(IX, "- of an empty array: copy", {"l": [], "s": 1}, [C("copy", "/l/-", frm="/s")], ["ok"],
     {"l": [1], "s": 1})
case(IX, "- of an empty array: remove", {"l": []}, [C("remove", "/l/-")], ["path_not_found"],
     {"l": []})
case(IX, "a leading zero in a map is a key", {"m": {"01": 1}}, [C("incr", "/m/01", value=1)],
     ["ok"], {"m": {"01": 2}})
case(IX, "a token into a string is type_mismatch, not an index", {"s": "abc"},
     [C("test", "/s/01", value="b")], ["type_mismatch"], {"s": "abc"})
# order: shape, root rules, move into own child, then from, then path
case(IX, "move: a missing from decides before an invalid path", LS,
     [C("move", "/o/l/01", frm="/q")], ["path_not_found"], LS)
case(IX, "move: an invalid from decides before a missing path", LS,
     [C("move", "/q/x", frm="/o/l/01")], ["invalid"], LS)
case(IX, "copy: an invalid path index", LS, [C("copy", "/o/l/01", frm="/src")], ["invalid"], LS)
case(IX, "copy to the root: forbidden before resolving from", LS,
     [C("copy", "", frm="/o/l/01")], ["forbidden"], LS)
case(IX, "move into own child is invalid before resolution", LS,
     [C("move", "/o/l/0/x", frm="/o/l/0")], ["invalid"], LS)
case(IX, "incr by a string with a bad index: shape first", LS,
     [C("incr", "/o/l/01", value="1")], ["invalid"], LS)
# array moves: the target index is taken after the removal
case(IX, "move forward by one", LS, [C("move", "/o/l/1", frm="/o/l/0")], ["ok"],
     E(LS, o={"l": ["b", "a"]}))
case(IX, "move to index == length before the removal", LS, [C("move", "/o/l/2", frm="/o/l/1")],
     ["path_not_found"], LS)
case(IX, "copy to index == length", LS, [C("copy", "/o/l/2", frm="/o/l/1")], ["ok"],
     E(LS, o={"l": ["a", "b", "b"]}))
case(IX, "move an element onto itself", LS, [C("move", "/o/l/1", frm="/o/l/1")], ["ok"], LS)
case(IX, "move - onto itself names nothing", LS, [C("move", "/o/l/-", frm="/o/l/-")],
     ["path_not_found"], LS)
case(IX, "copy an array into itself", LS, [C("copy", "/o/l/-", frm="/o/l")], ["ok"],
     E(LS, o={"l": ["a", "b", ["a", "b"]]}))
case(IX, "copy the root to the front of an array", {"l": [1]}, [C("copy", "/l/0", frm="")],
     ["ok"], {"l": [{"l": [1]}, 1]})
case(IX, "move an element out to an ancestor's key", {"o": {"l": [1, 2]}},
     [C("move", "/o", frm="/o/l/1")], ["ok"], {"o": 2})

# ---------------------------------------------------------------- incr edges
MAX, MIN = 2**63 - 1, -2**63
FMAX = 1.7976931348623157e308
for name, start, by, code, end in (
        ("int max minus one", MAX, -1, "ok", MAX - 1),
        ("int min plus int max", MIN, MAX, "ok", -1),
        ("int max plus int max overflows", MAX, MAX, "too_large", None),
        ("int min plus int min overflows", MIN, MIN, "too_large", None),
        ("int max plus float 0.0 is the float 2^63", MAX, 0.0, "ok", 9.223372036854775808e18),
        ("int 2^53+1 plus float 0.0 rounds to even", 2**53 + 1, 0.0, "ok", 9007199254740992.0),
        ("int 2^53 plus int 1 stays an exact int", 2**53, 1, "ok", 2**53 + 1),
        ("int plus an integral float is a float", 5, 1.0, "ok", 6.0),
        ("float plus int giving an integral value stays a float", 2.0, -1, "ok", 1.0),
        ("float plus float giving an integral value stays a float", 0.5, 0.5, "ok", 1.0),
        ("0.1 plus 0.2", 0.1, 0.2, "ok", 0.30000000000000004),
        ("-0.0 plus -0.0 stays -0.0", -0.0, -0.0, "ok", -0.0),
        ("-0.0 plus int 0 is 0.0", -0.0, 0, "ok", 0.0),
        ("int 0 plus -0.0 is 0.0", 0, -0.0, "ok", 0.0),
        ("float max plus int 1 rounds back to float max", FMAX, 1, "ok", FMAX),
        ("minus float max twice is minus infinity", -FMAX, -FMAX, "too_large", None),
        ("int max plus float max rounds to float max", MAX, FMAX, "ok", FMAX),
        ("int min plus float -1e308", MIN, -1e308, "ok", -1e308)):
    st = {"x": start}
    case(I, "incr: " + name, st, [C("incr", "/x", value=by)], [code],
         st if end is None else {"x": end})
case(I, "incr a missing key by int min", {}, [C("incr", "/x", value=MIN)], ["ok"], {"x": MIN})
case(I, "incr a missing key by int max", {}, [C("incr", "/x", value=MAX)], ["ok"], {"x": MAX})
case(I, "incr a missing key by -0.0 gives 0.0", {}, [C("incr", "/x", value=-0.0)], ["ok"],
     {"x": 0.0})
case(I, "incr a missing key in a map inside an array", {"l": [{}]},
     [C("incr", "/l/0/c", value=2.5)], ["ok"], {"l": [{"c": 2.5}]})
case(I, "incr an int twice past the edge: the second overflows", {"x": MAX - 1},
     [C("incr", "/x", value=1), C("incr", "/x", value=1)], ["ok", "too_large"], {"x": MAX})

# ---------------------------------------------------------------- edges
# Empty values, nil against missing, float zeros, keys that are special in JS.
ED = "edges"
EMP = {"s": "", "b": {"$bin": ""}, "a": [], "m": {}}
for p, v, code in (("/s", "", "ok"), ("/s", {"$bin": ""}, "test_failed"),
                   ("/s", None, "test_failed"),
                   ("/b", {"$bin": ""}, "ok"), ("/b", "", "test_failed"), ("/b", [], "test_failed"),
                   ("/a", [], "ok"), ("/a", {}, "test_failed"), ("/a", [None], "test_failed"),
                   ("/m", {}, "ok"), ("/m", [], "test_failed"), ("/m", {"": None}, "test_failed")):
    case(ED, f"test empty {p[1:]} against {json.dumps(v)}", EMP, [C("test", p, value=v)], [code],
         EMP)
for p in ("/s", "/b", "/a", "/m"):
    case(ED, f"incr empty {p[1:]}", EMP, [C("incr", p, value=1)], ["type_mismatch"], EMP)
for p in ("/s", "/b", "/a"):
    case(ED, f"merge into empty {p[1:]}", EMP, [C("merge", p, value={})], ["type_mismatch"], EMP)
    case(ED, f"create in empty {p[1:]}", EMP, [C("create", p, value=1)], ["type_mismatch"], EMP)
case(ED, "merge the empty map into the empty map", EMP, [C("merge", "/m", value={})], ["ok"], EMP)
case(ED, "merge into the empty map", EMP, [C("merge", "/m", value={"k": []})], ["ok"],
     E(EMP, m={"k": []}))
case(ED, "create in the empty map", EMP, [C("create", "/m", value={})], ["ok"],
     E(EMP, m={k6: {}}), keys={0: k6})
case(ED, "create with the empty proposed key in the empty map", EMP,
     [C("create", "/m", value="", key="")], ["ok"], E(EMP, m={"": ""}), keys={0: ""})
case(ED, "create with the empty proposed key taken", {"m": {"": 0}},
     [C("create", "/m", value=1, key="")], ["ok"], {"m": {"": 0, k6: 1}}, keys={0: k6})
for op in ("remove", "replace", "test", "incr", "merge", "create"):
    val = {"remove": None, "replace": 1, "test": 1, "incr": 1, "merge": {}, "create": 1}[op]
    cmd = C(op, "/a/0") if op == "remove" else C(op, "/a/0", value=val)
    case(ED, f"{op} index 0 of the empty array", EMP, [cmd], ["path_not_found"], EMP)
case(ED, "move an empty string to the end of the empty array", EMP,
     [C("move", "/a/-", frm="/s")], ["ok"], E(EMP, s=DEL, a=[""]))
case(ED, "copy the empty map into the empty array", EMP, [C("copy", "/a/0", frm="/m")], ["ok"],
     E(EMP, a=[{}]))
case(ED, "move the empty bin to a new key", EMP, [C("move", "/b2", frm="/b")], ["ok"],
     E(EMP, b=DEL, b2={"$bin": ""}))
case(ED, "replace the empty map with the empty array", EMP, [C("replace", "/m", value=[])], ["ok"],
     E(EMP, m=[]))
case(ED, "replace the empty string with the empty bin", EMP,
     [C("replace", "/s", value={"$bin": ""})], ["ok"], E(EMP, s={"$bin": ""}))
case(ED, "a bin with every byte class", {}, [C("add", "/b", value={"$bin": "AH+A/w=="})], ["ok"],
     {"b": {"$bin": "AH+A/w=="}})
case(ED, "test a bin byte for byte", {"b": {"$bin": "AH+A/w=="}},
     [C("test", "/b", value={"$bin": "AH+A/g=="})], ["test_failed"], {"b": {"$bin": "AH+A/w=="}})
case(ED, "merge into the empty key, missing", {}, [C("merge", "/", value={"a": 1})], ["ok"],
     {"": {"a": 1}})
case(ED, "create in the map under the empty key", {"": {}}, [C("create", "/", value=1)], ["ok"],
     {"": {k6: 1}}, keys={0: k6})
# nil is a value: a key holding nil exists, a missing key does not
NZ = {"z": None}
case(ED, "nil: test null against a missing key", {}, [C("test", "/z", value=None)],
     ["path_not_found"], {})
case(ED, "nil: merge the empty map onto nil", NZ, [C("merge", "/z", value={})], ["type_mismatch"],
     NZ)
case(ED, "nil: merge onto a missing key creates it", {}, [C("merge", "/z", value={})], ["ok"],
     {"z": {}})
case(ED, "nil: incr 0 onto nil", NZ, [C("incr", "/z", value=0)], ["type_mismatch"], NZ)
case(ED, "nil: create in nil", NZ, [C("create", "/z", value=1)], ["type_mismatch"], NZ)
case(ED, "nil: add onto nil replaces it", NZ, [C("add", "/z", value={})], ["ok"], {"z": {}})
case(ED, "nil: remove nil", NZ, [C("remove", "/z")], ["ok"], {})
case(ED, "nil: replace null with null takes a version", NZ, [C("replace", "/z", value=None)],
     ["ok"], NZ)
case(ED, "nil: walking into nil is type_mismatch", NZ, [C("add", "/z/x", value=1)],
     ["type_mismatch"], NZ)
case(ED, "nil: merge a map holding null into nil's parent", NZ,
     [C("merge", "", value={"z": None, "y": None})], ["ok"], {"z": None, "y": None})
# floats compare as numbers: 0.0 equals -0.0 (but never an int)
case(ED, "float: 0.0 tests equal to -0.0", {"f": 0.0}, [C("test", "/f", value=-0.0)], ["ok"],
     {"f": 0.0})
case(ED, "float: -0.0 tests equal to 0.0", {"f": -0.0}, [C("test", "/f", value=0.0)], ["ok"],
     {"f": -0.0})
case(ED, "float: -0.0 is not int 0", {"f": -0.0}, [C("test", "/f", value=0)], ["test_failed"],
     {"f": -0.0})
case(ED, "float: add keeps -0.0", {}, [C("add", "/f", value=-0.0)], ["ok"], {"f": -0.0})
case(ED, "float: a large integral float stays a float", {}, [C("add", "/f", value=1e300)], ["ok"],
     {"f": 1e300})
case(ED, "float: an integral float is not an int in a nested test",
     {"m": {"a": [1, 2.0]}}, [C("test", "/m", value={"a": [1, 2]})], ["test_failed"],
     {"m": {"a": [1, 2.0]}})
# keys that name properties of JS objects are ordinary keys
for key in ("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"):
    case(ED, f"key {key}: test a missing one", {}, [C("test", "/" + key, value=None)],
         ["path_not_found"], {})
    case(ED, f"key {key}: incr a missing one", {}, [C("incr", "/" + key, value=1)], ["ok"],
         {key: 1})
    case(ED, f"key {key}: merge into a missing one", {}, [C("merge", "/" + key, value={"a": 1})],
         ["ok"], {key: {"a": 1}})
    case(ED, f"key {key}: remove a missing one", {}, [C("remove", "/" + key)],
         ["path_not_found"], {})
    case(ED, f"key {key}: add under a missing one", {}, [C("add", f"/{key}/x", value=1)],
         ["path_not_found"], {})
    case(ED, f"key {key}: create in a missing one", {}, [C("create", "/" + key, value=1)],
         ["path_not_found"], {})
    case(ED, f"key {key}: replace an existing one", {key: 1}, [C("replace", "/" + key, value=2)],
         ["ok"], {key: 2})
    case(ED, f"key {key}: proposed to create", {}, [C("create", "", value=1, key=key)], ["ok"],
         {key: 1}, keys={0: key})
    case(ED, f"key {key}: merged into the root", {"a": 0}, [C("merge", "", value={key: [1]})],
         ["ok"], {"a": 0, key: [1]})
    case(ED, f"key {key}: test a map holding it", {"m": {key: 1}},
         [C("test", "/m", value={key: 1})], ["ok"], {"m": {key: 1}})
    case(ED, f"key {key}: walk through an existing one", {key: {"x": 1}},
         [C("incr", f"/{key}/x", value=1), C("move", f"/{key}/y", frm=f"/{key}/x")],
         ["ok", "ok"], {key: {"y": 2}})
    case(ED, f"key {key}: remove an existing one", {key: {}, "a": 1}, [C("remove", "/" + key)],
         ["ok"], {"a": 1})
    case(ED, f"key {key}: a map without it is not equal to one with it", {"m": {}},
         [C("test", "/m", value={key: None})], ["test_failed"], {"m": {}})


# ---------------------------------------------------------------- output

def matrix_gaps(files):
    """The (role, location, type) combinations that no case covers. A case
    counts for what its first command addresses in its starting state
    (cases without "before" flushes; model.classify)."""
    want = {(r, "root", "map") for r in ROLES}
    want |= {(r, loc, t) for r in ROLES for loc in LOCATIONS[1:] for t in TYPES}
    seen = set()
    for cases in files.values():
        for c in cases:
            if not c.get("before") and c["flush"]["commands"]:
                seen.update(model.classify(c["state"], c["flush"]["commands"][0]))
    return sorted(want - seen)


def compare(c, got, fields):
    """The fields of c["expect"] that differ from the model's."""
    e = c["expect"]
    bad = []
    for k in fields:
        if k not in e:
            continue
        if k == "state":
            same = (model.equal(model.from_json(e[k]), model.from_json(got[k])) and
                    model.mp(model.from_json(e[k])) == model.mp(model.from_json(got[k])))
        else:
            same = e[k] == got[k]
        if not same:
            bad.append(k)
    return bad


FIELDS = ("code", "duplicate", "version_before", "version_after", "results", "state", "version")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    total = bad = 0
    for name, cases in FILES.items():
        for c in cases:
            got = model.run_case(c)
            e = c["expect"]
            if e["state"] == MODEL:
                e["state"] = got["state"]
            diff = compare(c, got, FIELDS)
            if diff:
                bad += 1
                print(f"{name}: {c['name']}: hand-written {diff} differ from the model:",
                      {k: (e[k], got[k]) for k in diff})
            e["chain"], e["digest"] = got["chain"], got["digest"]
    gaps = matrix_gaps(FILES)
    for g in gaps:
        print("matrix gap: no case for %s on a %s target at %s" % (g[0], g[2], g[1]))
    if bad or gaps:
        print(f"{bad} cases disagree with the model, {len(gaps)} matrix gaps: nothing written")
        return 1
    for name, cases in FILES.items():
        with open(os.path.join(here, name + ".json"), "w") as f:
            json.dump({"description": "Flushline engine vectors: " + name +
                       " (schemas/ENGINE.md; generated by cases.py, checked by model.py)",
                       "cases": cases}, f, indent=1, ensure_ascii=False)
            f.write("\n")
        total += len(cases)
    print(f"{total} cases in {len(FILES)} files, all agreeing with the model; matrix complete")
    return 0


def check():
    """Re-runs the model on the files as they are (not as cases.py would
    write them) and compares every field, chain and digest included."""
    here = os.path.dirname(os.path.abspath(__file__))
    files, checked, bad = {}, 0, 0
    for fn in sorted(os.listdir(here)):
        if not fn.endswith(".json"):
            continue
        with open(os.path.join(here, fn)) as f:
            files[fn[:-5]] = json.load(f)["cases"]
        for c in files[fn[:-5]]:
            diff = compare(c, model.run_case(c), FIELDS + ("chain", "digest"))
            checked += 1
            if diff:
                bad += 1
                print(f"MISMATCH {fn}: {c['name']}: {diff}")
    gaps = matrix_gaps(files)
    for g in gaps:
        print("matrix gap: no case for %s on a %s target at %s" % (g[0], g[2], g[1]))
    print(f"{checked} cases re-run by the model, {bad} mismatches, {len(gaps)} matrix gaps")
    return bad == 0 and not gaps


if __name__ == "__main__":
    sys.exit(0 if check() else 1) if "--check" in sys.argv else sys.exit(main())
