#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Authoring script for the rules vectors (schemas/vectors/rules/*.json).

Each case: a rule set, a document state, the record context (user, ts in
the flush; role beside it), a flush, and the expected outcome: codes and
rule names are written here by hand from schemas/RULES.md; rules_model.py
(an independent model) must agree with every one of them, and fills the
states left to it, the create keys, the chain hashes and the digests.

`python3 cases.py` writes the files (nothing when the model disagrees);
`python3 cases.py --check` re-runs the model on the files as they are.
The C engine (tests/unit/test_rules_vectors.c) and the JS engine
(client/js/test/rules.test.js) run the same files.
"""
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rules_model  # noqa: E402

DOC = "t/board"
CID = "00112233445566778899aabbccddeeff"
V0 = 5
TS = 1700000000123
MODEL = "(computed by rules_model.py)"
RV = "rule_violation"

ALL = ["add", "remove", "replace", "move", "copy", "test", "incr", "merge", "create"]

BOARD = {
    "default_role": "member",
    "rules": [
        {"name": "create cards", "allow": {"ops": ["create"], "paths": ["/cards"]}},
        {"name": "own cards", "allow": {
            "ops": ["replace", "remove", "merge"], "paths": ["/cards/*", "/cards/*/**"],
            "where": [{"target": "/by", "eq": "$user"}]}},
        {"name": "vote +1", "allow": {
            "ops": ["incr"], "paths": ["/cards/*/votes"], "where": [{"value": "", "eq": 1}]}},
        {"name": "admin", "allow": {"ops": ALL, "paths": ["/**"], "roles": ["admin"]}},
        {"name": "read", "allow": {"ops": ["test"], "paths": ["/**"]}},
        {"name": "card shape", "constraint": {"path": "/cards/*", "schema": {
            "type": "object", "required": ["title"],
            "properties": {"title": {"type": "string", "maxLength": 20},
                           "votes": {"type": "integer", "minimum": 0},
                           "by": {"type": "string"}, "at": {"type": "integer"}},
            "additionalProperties": False}}},
        {"name": "at most 3 cards", "constraint": {
            "path": "/cards", "schema": {"type": "object", "maxProperties": 3}}},
        {"name": "author", "stamp": {"path": "/cards/*", "on": ["create"],
                                     "set": {"by": "$user", "at": "$ts"}}},
    ],
}

S0 = {"cards": {"c1": {"title": "A", "by": "ann", "at": 1, "votes": 0},
                "c2": {"title": "B", "by": "bob", "at": 2, "votes": 3}},
      "meta": {"name": "board"}}

FILES = {}


def C(op, path, **kw):
    d = {"op": op, "path": path}
    for k, v in kw.items():
        d["from" if k == "frm" else k] = v
    return d


def rcase(file, name, rules, state, cmds, codes, exp_state=MODEL, user="ann", role=None,
          atomic=None, ts=TS, version=V0, before=None, seq=1):
    """codes: per command, "ok", an engine code, or a rule name (a string
    that is not a code) meaning rule_violation by that rule."""
    engine_codes = {"ok", "path_not_found", "type_mismatch", "test_failed", "too_large",
                    "invalid", "forbidden", "aborted"}
    results, v = [], version
    aborted = atomic and any(c != "ok" for c in codes)
    for c in codes:
        if c in engine_codes:
            r = {"code": c, "version": 0}
        else:
            r = {"code": RV, "version": 0, "rule": c}
        if c == "ok" and not aborted:
            v += 1
            r["version"] = v
        elif c == "ok":
            r["code"] = "aborted"
        results.append(r)
    if aborted:
        exp_state, v = state if exp_state == MODEL else exp_state, version
    fl = {"doc": DOC, "client_id": CID, "seq": seq, "base_version": version}
    if atomic is not None:
        fl["atomic"] = atomic
    fl["user"] = user
    fl["ts"] = ts
    fl["commands"] = cmds
    c = {"name": name, "doc": DOC, "rules": rules, "state": state, "version": version}
    if role is not None:
        c["role"] = role
    if before:
        c["before"] = before
    c["flush"] = fl
    c["expect"] = {"code": "aborted" if aborted else "ok", "duplicate": False,
                   "version_before": version, "version_after": v, "results": results,
                   "state": exp_state, "version": v}
    FILES.setdefault(file, []).append(c)
    return c


def E(base, path, value=None, delete=False):
    """A deep copy of base with the value at path (a list of keys) set."""
    d = copy.deepcopy(base)
    cur = d
    for k in path[:-1]:
        cur = cur[k]
    if delete:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return d


card1 = S0["cards"]["c1"]

# ------------------------------------------------------------------ allow
A = "allow"
rcase(A, "no allow rule permits add at the root level", BOARD, S0,
      [C("add", "/x", value=1)], ["allow"], S0)
rcase(A, "create a card is permitted", BOARD, S0,
      [C("create", "/cards", value={"title": "C"})], ["ok"])
rcase(A, "op not in the rule's ops: add under /cards", BOARD, S0,
      [C("add", "/cards/c9", value={"title": "C"})], ["allow"], S0)
rcase(A, "replace own card's title", BOARD, S0,
      [C("replace", "/cards/c1/title", value="A2")], ["ok"],
      E(S0, ["cards", "c1", "title"], "A2"))
rcase(A, "replace another user's title names the near rule", BOARD, S0,
      [C("replace", "/cards/c2/title", value="B2")], ["own cards"], S0)
rcase(A, "remove own card", BOARD, S0, [C("remove", "/cards/c1")], ["ok"],
      E(S0, ["cards", "c1"], delete=True))
rcase(A, "remove another user's card", BOARD, S0, [C("remove", "/cards/c2")], ["own cards"], S0)
rcase(A, "remove a missing card: the condition fails before path_not_found", BOARD, S0,
      [C("remove", "/cards/zz")], ["own cards"], S0)
rcase(A, "merge into own card", BOARD, S0, [C("merge", "/cards/c1", value={"title": "M"})],
      ["ok"], E(S0, ["cards", "c1", "title"], "M"))
rcase(A, "merge into another user's card", BOARD, S0,
      [C("merge", "/cards/c2", value={"title": "M"})], ["own cards"], S0)
rcase(A, "test is permitted everywhere", BOARD, S0, [C("test", "/meta/name", value="board")],
      ["ok"], S0)
rcase(A, "test failing is still test_failed", BOARD, S0, [C("test", "/meta/name", value="x")],
      ["test_failed"], S0)
rcase(A, "admin role may add at the root level", BOARD, S0, [C("add", "/x", value=1)], ["ok"],
      E(S0, ["x"], 1), role="admin")
rcase(A, "admin edits another user's card", BOARD, S0,
      [C("replace", "/cards/c2/title", value="Z")], ["ok"],
      E(S0, ["cards", "c2", "title"], "Z"), role="admin")
rcase(A, "unknown role is not admin", BOARD, S0, [C("add", "/x", value=1)], ["allow"], S0,
      role="guest")
rcase(A, "role absent: the default role", {"default_role": "admin", "rules": BOARD["rules"]},
      S0, [C("add", "/x", value=1)], ["ok"], E(S0, ["x"], 1))
rcase(A, "role absent: default role member", BOARD, S0, [C("add", "/x", value=1)], ["allow"],
      S0)
rcase(A, "no allow rules: everything is allowed",
      {"rules": [{"name": "n", "constraint": {"path": "/n", "schema": {"type": "integer"}}}]},
      S0, [C("add", "/x", value=1)], ["ok"], E(S0, ["x"], 1))
rcase(A, "empty rule set allows everything", {"rules": []}, S0,
      [C("remove", "/meta")], ["ok"], E(S0, ["meta"], delete=True))
rcase(A, "invalid command is invalid, not a rule violation", BOARD, S0,
      [C("add", "x", value=1)], ["invalid"], S0)
rcase(A, "root replace is forbidden before rules", BOARD, S0,
      [C("replace", "", value={})], ["forbidden"], S0, role="admin")

MV = {"rules": [
    {"name": "moves in list", "allow": {"ops": ["move", "copy"], "paths": ["/list/*"]}},
    {"name": "adds", "allow": {"ops": ["add"], "paths": ["/list/*"]}}]}
SL = {"list": ["a", "b", "c"], "other": {"k": "v"}}
rcase(A, "move within the pattern: from and path match", MV, SL,
      [C("move", "/list/0", frm="/list/2")], ["ok"], {"list": ["c", "a", "b"], "other": {"k": "v"}})
rcase(A, "move from outside the pattern", MV, SL, [C("move", "/list/0", frm="/other/k")],
      ["moves in list"], SL)
rcase(A, "copy to outside the pattern", MV, SL, [C("copy", "/other/x", frm="/list/0")],
      ["allow"], SL)
rcase(A, "copy within the pattern", MV, SL, [C("copy", "/list/-", frm="/list/0")], ["ok"],
      {"list": ["a", "b", "c", "a"], "other": {"k": "v"}})
rcase(A, "star matches '-' as one segment", MV, SL, [C("add", "/list/-", value="d")], ["ok"],
      {"list": ["a", "b", "c", "d"], "other": {"k": "v"}})
rcase(A, "star does not match two segments", MV, SL, [C("add", "/list/0/x", value="d")],
      ["allow"], SL)

GL = {"rules": [
    {"name": "all under a", "allow": {"ops": ["add", "replace", "remove"], "paths": ["/a/**"]}},
    {"name": "escaped", "allow": {"ops": ["add"], "paths": ["/k~1ey/*"]}},
    {"name": "root merge", "allow": {"ops": ["merge"], "paths": [""]}}]}
SG = {"a": {"b": {"c": 1}}, "k/ey": {}}
rcase(A, "** matches the prefix itself", GL, SG, [C("replace", "/a", value={})], ["ok"],
      {"a": {}, "k/ey": {}})
rcase(A, "** matches deep paths", GL, SG, [C("add", "/a/b/c2", value=2)], ["ok"],
      {"a": {"b": {"c": 1, "c2": 2}}, "k/ey": {}})
rcase(A, "** does not match a sibling prefix", GL, SG, [C("add", "/ab", value=1)], ["allow"],
      SG)
rcase(A, "escaped segment in a pattern", GL, SG, [C("add", "/k~1ey/z", value=1)], ["ok"],
      {"a": {"b": {"c": 1}}, "k/ey": {"z": 1}})
rcase(A, "escaped segment is not its unescaped twin", GL, SG,
      [C("add", "/k/ey", value=1)], ["allow"], SG)
rcase(A, "the empty pattern is the root", GL, SG, [C("merge", "", value={"n": 1})], ["ok"],
      {"a": {"b": {"c": 1}}, "k/ey": {}, "n": 1})
rcase(A, "the empty pattern is only the root", GL, SG, [C("merge", "/a", value={"n": 1})],
      ["allow"], SG)
rcase(A, "first permitting rule wins among several", {"rules": [
    {"name": "r1", "allow": {"ops": ["add"], "paths": ["/x"], "roles": ["nobody"]}},
    {"name": "r2", "allow": {"ops": ["add"], "paths": ["/x"]}}]}, {}, [C("add", "/x", value=1)],
    ["ok"], {"x": 1})
rcase(A, "near rule is the first that matched op, path and role", {"rules": [
    {"name": "r1", "allow": {"ops": ["add"], "paths": ["/x"],
                             "where": [{"value": "", "eq": 2}]}},
    {"name": "r2", "allow": {"ops": ["add"], "paths": ["/x"],
                             "where": [{"value": "", "eq": 3}]}}]}, {},
    [C("add", "/x", value=1)], ["r1"], {})

# ------------------------------------------------------------- conditions
W = "conditions"
rcase(W, "vote +1 permitted", BOARD, S0, [C("incr", "/cards/c2/votes", value=1)], ["ok"],
      E(S0, ["cards", "c2", "votes"], 4))
rcase(W, "vote +2 refused", BOARD, S0, [C("incr", "/cards/c2/votes", value=2)], ["vote +1"], S0)
rcase(W, "vote -1 refused", BOARD, S0, [C("incr", "/cards/c2/votes", value=-1)], ["vote +1"],
      S0)
rcase(W, "vote 1.0 (a float) is not 1", BOARD, S0, [C("incr", "/cards/c2/votes", value=1.0)],
      ["vote +1"], S0)
rcase(W, "vote on a missing votes field creates it", BOARD,
      E(S0, ["cards", "c1"], {"title": "A", "by": "ann", "at": 1}),
      [C("incr", "/cards/c1/votes", value=1)], ["ok"], S0 | {"cards": {
          "c1": {"title": "A", "by": "ann", "at": 1, "votes": 1}, "c2": S0["cards"]["c2"]}})
rcase(W, "user is compared as a string", BOARD, S0,
      [C("replace", "/cards/c1/title", value="x")], ["own cards"], S0, user="ann2")
rcase(W, "empty user matches nobody's card", BOARD, S0,
      [C("replace", "/cards/c1/title", value="x")], ["own cards"], S0, user="")
rcase(W, "card without by: condition fails", BOARD,
      E(S0, ["cards", "c3"], {"title": "C"}), [C("replace", "/cards/c3/title", value="x")],
      ["own cards"], E(S0, ["cards", "c3"], {"title": "C"}))
rcase(W, "card whose by is not a string", BOARD,
      E(S0, ["cards", "c3"], {"title": "C", "by": 7}),
      [C("replace", "/cards/c3/title", value="x")], ["own cards"],
      E(S0, ["cards", "c3"], {"title": "C", "by": 7}))
NE = {"rules": [{"name": "not locked", "allow": {
    "ops": ["replace"], "paths": ["/items/*/**"],
    "where": [{"target": "/locked", "ne": True}]}}]}
SN = {"items": {"a": {"v": 1, "locked": True}, "b": {"v": 1, "locked": False}, "c": {"v": 1}}}
rcase(W, "ne: locked item refused", NE, SN, [C("replace", "/items/a/v", value=2)],
      ["not locked"], SN)
rcase(W, "ne: unlocked item permitted", NE, SN, [C("replace", "/items/b/v", value=2)], ["ok"],
      E(SN, ["items", "b", "v"], 2))
rcase(W, "ne: a missing field fails the condition too", NE, SN,
      [C("replace", "/items/c/v", value=2)], ["not locked"], SN)
ROLECOND = {"rules": [{"name": "own role", "allow": {
    "ops": ["add"], "paths": ["/by_role/*"], "where": [{"value": "/role", "eq": "$role"}]}}]}
rcase(W, "value condition with $role", ROLECOND, {"by_role": {}},
      [C("add", "/by_role/x", value={"role": "editor"})], ["ok"],
      {"by_role": {"x": {"role": "editor"}}}, role="editor")
rcase(W, "value condition with $role refused", ROLECOND, {"by_role": {}},
      [C("add", "/by_role/x", value={"role": "admin"})], ["own role"], {"by_role": {}},
      role="editor")
rcase(W, "value condition on a remove (no value) fails", {"rules": [{"name": "v", "allow": {
    "ops": ["remove"], "paths": ["/x"], "where": [{"value": "", "eq": 1}]}}]}, {"x": 1},
    [C("remove", "/x")], ["v"], {"x": 1})
rcase(W, "literal map condition", {"rules": [{"name": "m", "allow": {
    "ops": ["replace"], "paths": ["/cfg"], "where": [{"target": "", "eq": {"a": [1, 2]}}]}}]},
    {"cfg": {"a": [1, 2]}}, [C("replace", "/cfg", value=0)], ["ok"], {"cfg": 0})
rcase(W, "move needs the condition at from and at path", {"rules": [{"name": "mine", "allow": {
    "ops": ["move"], "paths": ["/d/*"], "where": [{"target": "/by", "eq": "$user"}]}}]},
    {"d": {"a": {"by": "ann"}, "b": {"by": "bob"}}}, [C("move", "/d/b", frm="/d/a")], ["mine"],
    {"d": {"a": {"by": "ann"}, "b": {"by": "bob"}}})
rcase(W, "move onto own items passes", {"rules": [{"name": "mine", "allow": {
    "ops": ["move"], "paths": ["/d/*"], "where": [{"target": "/by", "eq": "$user"}]}}]},
    {"d": {"a": {"by": "ann"}, "b": {"by": "ann", "x": 1}}}, [C("move", "/d/b", frm="/d/a")],
    ["ok"], {"d": {"b": {"by": "ann"}}})
rcase(W, "conditions see the state before the command, within a flush", BOARD, S0,
      [C("replace", "/cards/c1", value={"title": "A", "by": "bob"}),
       C("replace", "/cards/c1/title", value="B")], ["author", "ok"],
      E(S0, ["cards", "c1", "title"], "B"))

# ------------------------------------------------------------- constraints
K = "constraints"
rcase(K, "title of 20 characters fits", BOARD, S0,
      [C("replace", "/cards/c1/title", value="x" * 20)], ["ok"],
      E(S0, ["cards", "c1", "title"], "x" * 20))
rcase(K, "title of 21 characters breaks maxLength", BOARD, S0,
      [C("replace", "/cards/c1/title", value="x" * 21)], ["card shape"], S0)
rcase(K, "maxLength counts characters, not bytes", BOARD, S0,
      [C("replace", "/cards/c1/title", value="\u00e9" * 20)], ["ok"],
      E(S0, ["cards", "c1", "title"], "\u00e9" * 20))
rcase(K, "maxLength: 21 two-byte characters", BOARD, S0,
      [C("replace", "/cards/c1/title", value="\u00e9" * 21)], ["card shape"], S0)
rcase(K, "third card fits maxProperties 3", BOARD, S0,
      [C("create", "/cards", value={"title": "C"})], ["ok"])
rcase(K, "fourth card breaks maxProperties", BOARD, S0,
      [C("create", "/cards", value={"title": "C"}), C("create", "/cards", value={"title": "D"})],
      ["ok", "at most 3 cards"])
rcase(K, "a card without a title breaks required", BOARD, S0,
      [C("create", "/cards", value={"votes": 0})], ["card shape"], S0)
rcase(K, "additionalProperties false", BOARD, S0,
      [C("merge", "/cards/c1", value={"colour": "red"})], ["card shape"], S0)
rcase(K, "removing a required field", BOARD, S0, [C("remove", "/cards/c1/title")],
      ["card shape"], S0)
rcase(K, "votes below minimum (admin)", BOARD, S0,
      [C("replace", "/cards/c1/votes", value=-1)], ["card shape"], S0, role="admin")
rcase(K, "votes at minimum 0 (admin)", BOARD, E(S0, ["cards", "c1", "votes"], 5),
      [C("replace", "/cards/c1/votes", value=0)], ["ok"], S0, role="admin")
rcase(K, "votes must be an integer, not a float", BOARD, S0,
      [C("replace", "/cards/c1/votes", value=1.5)], ["card shape"], S0, role="admin")
rcase(K, "replacing the whole cards map checks every card", BOARD, S0,
      [C("replace", "/cards", value={"a": {"title": "ok"}, "b": {"title": 5}})], ["card shape"],
      S0, role="admin")
rcase(K, "constraints check only what the command touched", BOARD,
      E(S0, ["cards", "bad"], {"title": 5}), [C("replace", "/cards/c1/title", value="Q")],
      ["ok"], E(E(S0, ["cards", "bad"], {"title": 5}), ["cards", "c1", "title"], "Q"))
rcase(K, "test never fails a constraint", BOARD, E(S0, ["cards", "bad"], {"title": 5}),
      [C("test", "/cards/bad", value={"title": 5})], ["ok"], E(S0, ["cards", "bad"], {"title": 5}))
rcase(K, "a removed location is not checked", BOARD, E(S0, ["cards", "c1", "title"], 5),
      [C("remove", "/cards/c1")], ["ok"], E(S0, ["cards", "c1"], delete=True))
LI = {"rules": [{"name": "items", "constraint": {"path": "/l/*", "schema": {"type": "integer"}}}]}
rcase(K, "an append with - is checked as the item it becomes", LI, {"l": [1]},
      [C("add", "/l/-", value="x")], ["items"], {"l": [1]})
rcase(K, "an append with - that fits", LI, {"l": [1]}, [C("add", "/l/-", value=2)], ["ok"],
      {"l": [1, 2]})
rcase(K, "a copy appended with - is checked", LI, {"l": [1], "s": "x"},
      [C("copy", "/l/-", frm="/s")], ["items"], {"l": [1], "s": "x"})
rcase(K, "move checks the from side too", {"rules": [
    {"name": "min2", "constraint": {"path": "/l", "schema": {"minItems": 2}}}]},
    {"l": [1, 2], "o": {}}, [C("move", "/o/x", frm="/l/0")], ["min2"], {"l": [1, 2], "o": {}})

SCH = [  # (name, schema, value, ok)
    ("type string ok", {"type": "string"}, "s", True),
    ("type string refuses an int", {"type": "string"}, 1, False),
    ("type array of types", {"type": ["string", "null"]}, None, True),
    ("type array of types refuses bool", {"type": ["string", "null"]}, True, False),
    ("integer accepts an int", {"type": "integer"}, 3, True),
    ("integer refuses a float", {"type": "integer"}, 3.0, False),
    ("number accepts an int", {"type": "number"}, 3, True),
    ("number accepts a float", {"type": "number"}, 3.5, True),
    ("boolean", {"type": "boolean"}, False, True),
    ("object refuses an array", {"type": "object"}, [], False),
    ("array refuses a map", {"type": "array"}, {}, False),
    ("bin matches no type", {"type": ["string", "array"]}, {"$bin": "AAE="}, False),
    ("enum member", {"enum": ["a", 1, None]}, 1, True),
    ("enum non-member", {"enum": ["a", 1, None]}, "b", False),
    ("enum compares types (1.0 is not 1)", {"enum": [1]}, 1.0, False),
    ("const equal map", {"const": {"a": 1}}, {"a": 1}, True),
    ("const different map", {"const": {"a": 1}}, {"a": 2}, False),
    ("minimum inclusive", {"minimum": 2}, 2, True),
    ("minimum below", {"minimum": 2}, 1.999, False),
    ("maximum inclusive float", {"maximum": 2.5}, 2.5, True),
    ("maximum above", {"maximum": 2.5}, 3, False),
    ("minimum ignores strings", {"minimum": 2}, "a", True),
    ("minLength ok", {"minLength": 2}, "ab", True),
    ("minLength short", {"minLength": 2}, "a", False),
    ("maxLength 0 with empty string", {"maxLength": 0}, "", True),
    ("maxLength counts a 4-byte character once", {"maxLength": 1}, "\U0001F600", True),
    ("minItems edge", {"minItems": 2}, [1, 2], True),
    ("minItems short", {"minItems": 2}, [1], False),
    ("maxItems edge", {"maxItems": 2}, [1, 2], True),
    ("maxItems over", {"maxItems": 2}, [1, 2, 3], False),
    ("items all match", {"items": {"type": "integer"}}, [1, 2], True),
    ("items one fails", {"items": {"type": "integer"}}, [1, "2"], False),
    ("minProperties", {"minProperties": 1}, {}, False),
    ("maxProperties edge", {"maxProperties": 1}, {"a": 1}, True),
    ("required present", {"required": ["a"]}, {"a": None}, True),
    ("required missing", {"required": ["a", "b"]}, {"a": 1}, False),
    ("properties nested", {"properties": {"a": {"properties": {"b": {"type": "string"}}}}},
     {"a": {"b": 1}}, False),
    ("additionalProperties schema ok", {"properties": {"a": {}},
                                         "additionalProperties": {"type": "integer"}},
     {"a": "x", "b": 1}, True),
    ("additionalProperties schema fails", {"additionalProperties": {"type": "integer"}},
     {"b": "x"}, False),
    ("additionalProperties true", {"additionalProperties": True}, {"b": "x"}, True),
    ("annotations are ignored", {"title": "t", "description": "d", "$comment": "c"}, 1, True),
]
for name, schema, value, ok in SCH:
    rs = {"rules": [{"name": "x schema", "constraint": {"path": "/x", "schema": schema}}]}
    rcase("schema", name, rs, {"x": None}, [C("replace", "/x", value=value)],
          ["ok" if ok else "x schema"], {"x": value} if ok else {"x": None})

# ------------------------------------------------------------------ stamps
T = "stamps"
rcase(T, "create stamps by and at", BOARD, S0, [C("create", "/cards", value={"title": "C"})],
      ["ok"])
rcase(T, "a forged by in a create is overwritten", BOARD, S0,
      [C("create", "/cards", value={"title": "C", "by": "mallory", "at": 0})], ["ok"])
rcase(T, "create with a proposed key stamps at that key", BOARD, S0,
      [C("create", "/cards", value={"title": "C"}, key="mine")], ["ok"])
rcase(T, "replace of a stamped field is refused", BOARD, S0,
      [C("replace", "/cards/c1/by", value="ann")], ["author"], S0)
rcase(T, "remove of a stamped field is refused", BOARD, S0, [C("remove", "/cards/c1/at")],
      ["author"], S0)
rcase(T, "admin cannot write a stamped field either", BOARD, S0,
      [C("replace", "/cards/c2/by", value="ann")], ["author"], S0, role="admin")
rcase(T, "merge carrying a stamped field is refused (merge not in on)", BOARD, S0,
      [C("merge", "/cards/c1", value={"by": "bob"})], ["author"], S0)
rcase(T, "replace of a whole card carrying by is refused", BOARD, S0,
      [C("replace", "/cards/c1", value={"title": "A", "by": "ann"})], ["author"], S0)
rcase(T, "replace of a whole card without stamped fields passes the guard", BOARD, S0,
      [C("replace", "/cards/c1", value={"title": "A"})], ["ok"],
      E(S0, ["cards", "c1"], {"title": "A"}))
rcase(T, "copy onto a stamped location is refused", BOARD, S0,
      [C("copy", "/cards/c3", frm="/cards/c1")], ["author"], S0, role="admin")
STV = {"rules": [{"name": "meta", "stamp": {"path": "/log/*", "on": ["add", "replace", "merge"],
                                            "set": {"v": "$version", "k": "$key",
                                                    "u": "$user", "t": "$ts"}}}]}
rcase(T, "add stamps $version $key $user $ts", STV, {"log": {}},
      [C("add", "/log/e1", value={"msg": "hi"})], ["ok"],
      {"log": {"e1": {"msg": "hi", "v": V0 + 1, "k": "e1", "u": "ann", "t": TS}}})
rcase(T, "$version is the command's own version", STV, {"log": {}},
      [C("add", "/log/a", value={}), C("add", "/log/b", value={})], ["ok", "ok"],
      {"log": {"a": {"v": V0 + 1, "k": "a", "u": "ann", "t": TS},
               "b": {"v": V0 + 2, "k": "b", "u": "ann", "t": TS}}})
rcase(T, "merge in on: stamps overwrite on each merge", STV,
      {"log": {"a": {"v": 1, "k": "a", "u": "bob", "t": 0, "n": 1}}},
      [C("merge", "/log/a", value={"n": 2})], ["ok"],
      {"log": {"a": {"v": V0 + 1, "k": "a", "u": "ann", "t": TS, "n": 2}}})
rcase(T, "a non-map value is not stamped", STV, {"log": {}}, [C("add", "/log/a", value=5)],
      ["ok"], {"log": {"a": 5}})
rcase(T, "$key unescapes the token", STV, {"log": {}}, [C("add", "/log/a~1b", value={})],
      ["ok"], {"log": {"a/b": {"v": V0 + 1, "k": "a/b", "u": "ann", "t": TS}}})
rcase(T, "writes above the stamped location are not stamped", STV, {"log": {}},
      [C("replace", "/log", value={"a": {"x": 1}})], ["ok"], {"log": {"a": {"x": 1}}})
rcase(T, "stamp makes the value too large", dict(STV),
      {"log": {}}, [C("add", "/log/a", value={"pad": "x" * 60})], ["too_large"],
      {"log": {}})
FILES[T][-1]["config"] = {"max_state_bytes": 90}
rcase(T, "stamps come before constraints", {"rules": [
    {"name": "stamp", "stamp": {"path": "/p/*", "set": {"by": "$user"}}},
    {"name": "shape", "constraint": {"path": "/p/*", "schema": {"required": ["by"]}}}]},
    {"p": {}}, [C("add", "/p/x", value={})], ["ok"], {"p": {"x": {"by": "ann"}}})
rcase(T, "constraints see the stamp's value", {"rules": [
    {"name": "stamp", "stamp": {"path": "/p/*", "set": {"by": "$user"}}},
    {"name": "short users", "constraint": {"path": "/p/*/by", "schema": {"maxLength": 3}}}]},
    {"p": {}}, [C("add", "/p/x", value={"by": "ok"})], ["short users"], {"p": {}},
    user="alice")
rcase(T, "two stamps on one path apply in order", {"rules": [
    {"name": "s1", "stamp": {"path": "/p/*", "set": {"a": "$user", "b": "$user"}}},
    {"name": "s2", "stamp": {"path": "/p/*", "set": {"b": "$key"}}}]},
    {"p": {}}, [C("add", "/p/x", value={})], ["ok"], {"p": {"x": {"a": "ann", "b": "x"}}})
rcase(T, "move onto a stamped location is refused", {"rules": [
    {"name": "s", "stamp": {"path": "/p/*", "set": {"by": "$user"}}}]},
    {"p": {}, "q": {"by": "x"}}, [C("move", "/p/y", frm="/q")], ["s"],
    {"p": {}, "q": {"by": "x"}})
rcase(T, "move of a stamped field out is refused", {"rules": [
    {"name": "s", "stamp": {"path": "/p/*", "set": {"by": "$user"}}}]},
    {"p": {"a": {"by": "x"}}}, [C("move", "/by", frm="/p/a/by")], ["s"], {"p": {"a": {"by": "x"}}})
rcase(T, "copy of a stamped field elsewhere is allowed", {"rules": [
    {"name": "s", "stamp": {"path": "/p/*", "set": {"by": "$user"}}}]},
    {"p": {"a": {"by": "x"}}}, [C("copy", "/by", frm="/p/a/by")], ["ok"],
    {"p": {"a": {"by": "x"}}, "by": "x"})

# ------------------------------------------------------------------ order and atomic
O = "order"
rcase(O, "allow is checked before the stamp guard", BOARD, S0,
      [C("replace", "/cards/c2/by", value="x")], ["own cards"], S0)
rcase(O, "stamp guard after allow: own card's by", BOARD, S0,
      [C("replace", "/cards/c1/by", value="x")], ["author"], S0)
rcase(O, "rules before path_not_found", BOARD, S0, [C("add", "/nope/x", value=1)], ["allow"],
      S0)
rcase(O, "engine errors after allow", BOARD, S0,
      [C("merge", "/cards/c1/title", value={"a": 1})], ["type_mismatch"], S0)
rcase(O, "non-atomic: a violation is rejected alone", BOARD, S0,
      [C("incr", "/cards/c2/votes", value=2), C("incr", "/cards/c2/votes", value=1)],
      ["vote +1", "ok"], E(S0, ["cards", "c2", "votes"], 4))
rcase(O, "atomic: a violation aborts the flush", BOARD, S0,
      [C("incr", "/cards/c2/votes", value=1), C("incr", "/cards/c2/votes", value=2)],
      ["ok", "vote +1"], S0, atomic=True)
rcase(O, "atomic: a constraint violation rolls back earlier commands", BOARD, S0,
      [C("create", "/cards", value={"title": "C"}), C("create", "/cards", value={"title": "D"})],
      ["ok", "at most 3 cards"], S0, atomic=True)
rcase(O, "atomic: all pass", BOARD, S0,
      [C("incr", "/cards/c2/votes", value=1), C("replace", "/cards/c1/title", value="T")],
      ["ok", "ok"], E(E(S0, ["cards", "c2", "votes"], 4), ["cards", "c1", "title"], "T"),
      atomic=True)
rcase(O, "a later command sees an earlier command's state", BOARD, S0,
      [C("remove", "/cards/c1"), C("create", "/cards", value={"title": "C"}),
       C("create", "/cards", value={"title": "D"}), C("create", "/cards", value={"title": "E"})],
      ["ok", "ok", "ok", "at most 3 cards"])
rcase(O, "rule_violation does not use a version", BOARD, S0,
      [C("add", "/x", value=1), C("incr", "/cards/c1/votes", value=1)], ["allow", "ok"],
      E(S0, ["cards", "c1", "votes"], 1))
rcase(O, "a duplicate seq answers with the original rule names", BOARD, S0,
      [C("incr", "/cards/c2/votes", value=2)], ["vote +1"], S0,
      before=[{"doc": DOC, "client_id": CID, "seq": 1, "base_version": V0, "user": "ann",
               "ts": TS, "commands": [C("incr", "/cards/c2/votes", value=2)]}])
FILES[O][-1]["expect"]["duplicate"] = True
rcase(O, "the flush's user decides, per flush", BOARD, S0,
      [C("replace", "/cards/c2/title", value="mine")], ["ok"],
      E(S0, ["cards", "c2", "title"], "mine"), user="bob")


# ------------------------------------------------------------------ output

def compare(c, got):
    e = c["expect"]
    bad = []
    for k in ("code", "duplicate", "version_before", "version_after", "version"):
        if e[k] != got[k]:
            bad.append(k)
    if len(e["results"]) != len(got["results"]):
        bad.append("results")
    else:
        for r, g in zip(e["results"], got["results"]):
            if any(r.get(k) != g.get(k) for k in ("code", "version", "rule")):
                bad.append("results")
                break
    if e["state"] != MODEL and (rules_model.model.mp(rules_model.from_json(e["state"])) !=
                                rules_model.model.mp(rules_model.from_json(got["state"]))):
        bad.append("state")
    return bad


def main():
    total = bad = 0
    for name, cases in FILES.items():
        for c in cases:
            got = rules_model.run_case(c)
            diff = compare(c, got)
            if diff:
                bad += 1
                print(f"{name}: {c['name']}: {diff}: hand {[c['expect'][k] for k in diff if k in c['expect']]} model {[got[k] for k in diff]}")
                continue
            e = c["expect"]
            e["state"] = got["state"]
            e["results"] = got["results"]  # adds create keys
            e["chain"], e["digest"] = got["chain"], got["digest"]
            total += 1
    if bad:
        print(f"{bad} cases disagree with the model: nothing written")
        return 1
    for name, cases in FILES.items():
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump({"description": "Flushline rules vectors: " + name +
                       " (schemas/RULES.md; generated by cases.py, checked by rules_model.py)",
                       "cases": cases}, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print(f"{total} cases in {len(FILES)} files, all agreeing with the model")
    return 0


def check():
    n = bad = 0
    for fn in sorted(os.listdir(HERE)):
        if not fn.endswith(".json"):
            continue
        with open(os.path.join(HERE, fn)) as f:
            for c in json.load(f)["cases"]:
                got = rules_model.run_case(c)
                n += 1
                if (compare(c, got) or got["chain"] != c["expect"]["chain"] or
                        got["digest"] != c["expect"]["digest"]):
                    bad += 1
                    print(f"MISMATCH {fn}: {c['name']}")
    print(f"{n} cases re-run by the model, {bad} mismatches")
    return bad == 0


if __name__ == "__main__":
    sys.exit((0 if check() else 1) if "--check" in sys.argv else main())
