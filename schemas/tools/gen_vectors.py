#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""gen_vectors: writes schemas/vectors/messages/*.json from the cases below.

An independent implementation of the canonical msgpack rules of
schemas/PROTOCOL.md (smallest int form, float64 always, str8/16/32 by length,
map keys in bytewise UTF-8 order), so the C codec is checked against a second
encoder, not against itself. Not needed at build time; run it by hand after
changing a case:  python3 schemas/tools/gen_vectors.py
"""
import json, os, struct

HEXFIELDS = {"client_id": 16, "chain": 32, "digest": 32}


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7f:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if v >= 0:
            for tag, fmt, lim in ((0xcc, ">B", 0xff), (0xcd, ">H", 0xffff),
                                  (0xce, ">I", 0xffffffff), (0xcf, ">Q", 2**63 - 1)):
                if v <= lim:
                    return bytes([tag]) + struct.pack(fmt, v)
            raise ValueError("int too large")
        for tag, fmt, lim in ((0xd0, ">b", -128), (0xd1, ">h", -32768),
                              (0xd2, ">i", -2**31), (0xd3, ">q", -2**63)):
            if v >= lim:
                return bytes([tag]) + struct.pack(fmt, v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return strhdr(len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        h = bytes([0xc4, n]) if n <= 0xff else b"\xc5" + struct.pack(">H", n) if n <= 0xffff \
            else b"\xc6" + struct.pack(">I", n)
        return h + bytes(v)
    if isinstance(v, list):
        return cnthdr(len(v), 0x90, 0xdc) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode())
        return cnthdr(len(v), 0x80, 0xde) + b"".join(pack(k) + pack(x) for k, x in items)
    raise TypeError(type(v))


def strhdr(n):
    if n < 32:
        return bytes([0xa0 | n])
    if n <= 0xff:
        return bytes([0xd9, n])
    if n <= 0xffff:
        return b"\xda" + struct.pack(">H", n)
    return b"\xdb" + struct.pack(">I", n)


def cnthdr(n, fix, tag16):
    if n < 16:
        return bytes([fix | n])
    if n <= 0xffff:
        return bytes([tag16]) + struct.pack(">H", n)
    return bytes([tag16 + 1]) + struct.pack(">I", n)


def to_wire(v, key=None, envelope=True):
    """JSON form -> msgpack model: hex ids/hashes -> bytes, {"$bin"} -> bytes.
    Embedded values (value, body, state) keep only the $bin rule."""
    if isinstance(v, dict):
        if len(v) == 1 and "$bin" in v and isinstance(v["$bin"], str):
            import base64
            return base64.b64decode(v["$bin"])
        out = {}
        for k, x in v.items():
            if envelope and k in HEXFIELDS and isinstance(x, str):
                out[k] = bytes.fromhex(x)
            elif envelope and k == "dedup":
                out[k] = [[bytes.fromhex(e[0]), e[1], to_wire(e[2])] for e in x]
            else:
                out[k] = to_wire(x, k, envelope and k not in ("value", "body", "state"))
        return out
    if isinstance(v, list):
        return [to_wire(x, None, envelope) for x in v]
    return v


CID = "00112233445566778899aabbccddeeff"
H1 = "11" * 32
H2 = "22" * 32
H3 = "33" * 32

CLIENT = [
    ("hello", {"v": 1, "t": "hello", "token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln", "client": "flushline-js/0.1.0"}),
    ("hello_minimal", {"v": 1, "t": "hello", "token": "t"}),
    ("auth", {"v": 1, "t": "auth", "token": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}),
    ("subscribe", {"v": 1, "t": "subscribe", "doc": "acme/board-1"}),
    ("subscribe_have_version", {"v": 1, "t": "subscribe", "doc": "acme/board-1", "have_version": 41}),
    ("unsubscribe", {"v": 1, "t": "unsubscribe", "doc": "acme/board-1"}),
    ("flush", {"v": 1, "t": "flush", "doc": "acme/board-1", "client_id": CID, "seq": 7,
               "base_version": 300, "commands": [
                   {"op": "add", "path": "/cards/-", "value": {"title": "Fix it", "n": 1.5}},
                   {"op": "incr", "path": "/count", "value": -1},
                   {"op": "move", "path": "/b", "from": "/a"},
                   {"op": "create", "path": "/cards", "key": "c1", "value": {"x": None}},
                   {"op": "remove", "path": "/old"}]}),
    ("flush_atomic_if_version", {"v": 1, "t": "flush", "doc": "t/d\u00e9j\u00e0", "client_id": CID,
                                 "seq": 1, "base_version": 0, "if_version": 0, "atomic": True,
                                 "commands": [{"op": "replace", "path": "",
                                               "value": {"bin": {"$bin": "AAEC"}}}]}),
    ("signal", {"v": 1, "t": "signal", "doc": "acme/board-1", "body": {"cursor": [10, 20]}}),
    ("ping", {"v": 1, "t": "ping", "id": 99}),
    ("ping_no_id", {"v": 1, "t": "ping"}),
    # U+0000 is data in both forms: a JSON client writes back and addresses what it read
    ("flush_nul_strings", {"v": 1, "t": "flush", "doc": "acme/n\u0000ul", "client_id": CID, "seq": 2,
                           "base_version": 5, "commands": [
                               {"op": "test", "path": "/a\u0000b", "value": "x\u0000y"},
                               {"op": "create", "path": "/m", "key": "k\u0000", "value": "\u0000"}]}),
    ("signal_nul_body", {"v": 1, "t": "signal", "doc": "acme/board-1", "body": {"s": "\u0000"}}),
    # null is read as absent in protocol fields, but a value field's null is the value nil
    ("flush_null_values", {"v": 1, "t": "flush", "doc": "acme/board-1", "client_id": CID, "seq": 4,
                           "base_version": 5, "commands": [
                               {"op": "add", "path": "/x", "value": None},
                               {"op": "test", "path": "/x", "value": None},
                               {"op": "merge", "path": "", "value": {"y": None}}]}),
    ("signal_null_body", {"v": 1, "t": "signal", "doc": "acme/board-1", "body": None}),
    # an empty proposed create key is a key
    ("flush_create_empty_key", {"v": 1, "t": "flush", "doc": "acme/board-1", "client_id": CID,
                                "seq": 3, "base_version": 5,
                                "commands": [{"op": "create", "path": "/m", "key": "", "value": 1}]}),
]

SERVER = [
    ("welcome", {"v": 1, "t": "welcome", "user": "u-1", "server": "flushline/0.1.0",
                 "limits": {"max_frame": 1048576, "max_commands": 1000,
                            "max_subscriptions": 100, "rate": 100, "burst": 200}}),
    # the token's exp and the gateway's leeway (optional: older gateways omit them)
    ("welcome_exp_leeway", {"v": 1, "t": "welcome", "user": "u-1", "server": "flushline/0.1.0",
                            "limits": {"max_frame": 1048576, "max_commands": 1000,
                                       "max_subscriptions": 100, "rate": 100, "burst": 200},
                            "exp": 1700003600, "leeway": 30}),
    ("snapshot", {"v": 1, "t": "snapshot", "doc": "acme/board-1", "version": 42, "chain": H1,
                  "state": {"cards": [], "title": "Board"}}),
    ("deltas", {"v": 1, "t": "deltas", "doc": "acme/board-1", "from_version": 42, "items": [
        {"version": 44, "client_id": CID, "seq": 3, "user": "u-1", "ts": 1700000000000,
         "chain": H2, "commands": [{"op": "add", "path": "/a", "value": 1},
                                   {"op": "create", "path": "/cards", "key": "k7", "value": {}}]},
        {"version": 45, "client_id": CID, "seq": 4, "user": "u-1", "ts": 1700000000005,
         "chain": H3, "commands": [{"op": "remove", "path": "/a"}]}]}),
    ("outcome", {"v": 1, "t": "outcome", "doc": "acme/board-1", "client_id": CID, "seq": 3,
                 "code": 0, "version_before": 42, "version_after": 44, "chain": H2,
                 "results": [{"code": 0, "version": 43}, {"code": 0, "version": 44, "key": "k7"},
                             {"code": 3}]}),
    ("outcome_empty_create_key", {"v": 1, "t": "outcome", "doc": "acme/board-1", "client_id": CID,
                                  "seq": 4, "code": 0, "version_before": 44, "version_after": 45,
                                  "chain": H3, "results": [{"code": 0, "version": 45, "key": ""}]}),
    ("outcome_duplicate", {"v": 1, "t": "outcome", "doc": "acme/board-1", "client_id": CID,
                           "seq": 3, "code": 0, "dup": True, "version_before": 42,
                           "version_after": 44, "chain": H2, "results": []}),
    ("nack", {"v": 1, "t": "nack", "doc": "acme/board-1", "client_id": CID, "seq": 8, "code": 27,
              "retry_after_ms": 250, "reason": "broker unavailable"}),
    ("nack_minimal", {"v": 1, "t": "nack", "code": 26, "reason": "rate limited"}),
    # one nack per code that only the gateway produces (PROTOCOL.md section 6)
    ("nack_unauthorized", {"v": 1, "t": "nack", "code": 23, "reason": "no token"}),
    ("nack_token_expired", {"v": 1, "t": "nack", "code": 24, "reason": "token expired"}),
    ("nack_doc_forbidden", {"v": 1, "t": "nack", "doc": "other/doc", "code": 25,
                            "reason": "the token does not grant other/doc"}),
    ("nack_limit", {"v": 1, "t": "nack", "doc": "acme/board-1", "code": 28,
                    "reason": "at most 100 subscriptions"}),
    ("nack_not_subscribed", {"v": 1, "t": "nack", "doc": "acme/board-1", "code": 29,
                             "reason": "not subscribed"}),
    # a flush refused before it could be published names it, seq 0 included
    ("nack_bad_frame_flush", {"v": 1, "t": "nack", "doc": "acme/board-1", "client_id": CID,
                              "seq": 0, "code": 20, "reason": "\"seq\" starts at 1"}),
    ("nack_limit_flush", {"v": 1, "t": "nack", "doc": "acme/board-1", "client_id": CID,
                          "seq": 9, "code": 28, "reason": "\"commands\" has 1001 items, limit 1000"}),
    ("error_internal", {"v": 1, "t": "error", "code": 31, "reason": "internal error"}),
    ("signal", {"v": 1, "t": "signal", "doc": "acme/board-1", "from": "u-2",
                "body": {"typing": True}}),
    ("error", {"v": 1, "t": "error", "code": 20, "reason": "bad msgpack"}),
    ("pong", {"v": 1, "t": "pong", "id": 99}),
    ("changed", {"v": 1, "t": "changed", "doc": "acme/board-1", "version": 301}),
    ("changed_version_0", {"v": 1, "t": "changed", "doc": "t/d\u00e9j\u00e0", "version": 0}),
]

RECORDS = [
    ("flush", {"v": 1, "t": "flush", "doc": "acme/board-1", "client_id": CID, "seq": 7,
               "base_version": 300, "user": "u-1", "gw": "gw-a", "origin": 12345,
               "commands": [{"op": "test", "path": "/n", "value": 5},
                            {"op": "merge", "path": "/m", "value": {"k": "v"}}]}),
    ("sync", {"v": 1, "t": "sync", "doc": "acme/board-1", "gw": "gw-a", "req": 5,
              "have_version": 40}),
    ("outcome", {"v": 1, "t": "outcome", "doc": "acme/board-1", "client_id": CID, "seq": 7,
                 "code": 0, "version_before": 300, "version_after": 301, "chain": H1,
                 "results": [{"code": 3}, {"code": 0, "version": 301}], "user": "u-1",
                 "ts": 1700000000000, "gw": "gw-a", "origin": 12345,
                 "commands": [{"op": "merge", "path": "/m", "value": {"k": "v"}}]}),
    ("outcome_gap", {"v": 1, "t": "outcome", "doc": "acme/board-1", "client_id": CID, "seq": 9,
                     "code": 8, "version_before": 301, "version_after": 301, "chain": H1,
                     "results": [], "user": "u-1", "ts": 1700000000001, "gw": "gw-a",
                     "origin": 12345, "commands": []}),
    ("sync_reply_deltas", {"v": 1, "t": "sync_reply", "doc": "acme/board-1", "gw": "gw-a",
                           "req": 5, "version": 41, "chain": H2, "from_version": 40, "items": [
                               {"version": 41, "client_id": CID, "seq": 2, "user": "u-1",
                                "ts": 1700000000000, "chain": H2,
                                "commands": [{"op": "add", "path": "/x", "value": 1}]}]}),
    ("sync_reply_state", {"v": 1, "t": "sync_reply", "doc": "acme/board-1", "gw": "gw-a",
                          "req": 6, "version": 41, "chain": H2, "state": {"x": 1}}),
    ("snapshot", {"v": 1, "t": "snapshot", "doc": "acme/board-1", "version": 301, "chain": H1,
                  "digest": H3, "state": {"m": {"k": "v"}, "n": 5}, "events_offset": 1234,
                  "dedup": [[CID, 7, {"code": 0, "version_before": 300, "version_after": 301,
                                      "chain": H1,
                                      "results": [{"code": 3}, {"code": 0, "version": 301}]}]]}),
    ("snapshot_dedup_evicted", {"v": 1, "t": "snapshot", "doc": "acme/board-1", "version": 301,
                                "chain": H1, "digest": H3, "state": {"n": 5},
                                "events_offset": 1234, "dedup_evicted": 70000,
                                "dedup": [[CID, 7, {"code": 0, "version_before": 300,
                                                    "version_after": 301, "chain": H1,
                                                    "results": [{"code": 0, "version": 301}]}]]}),
    ("signal", {"v": 1, "t": "signal", "doc": "acme/board-1", "gw": "gw-a", "user": "u-1",
                "body": {"cursor": [1, 2]}}),
    ("checkpoint", {"v": 1, "t": "checkpoint", "partition": 3, "events_offset": 1234}),
]


def hexb(b):
    return b.hex()


CLIENT_BAD = [
    ("unknown_type", {"msgpack_hex": hexb(pack({"v": 1, "t": "frobnicate"}))}, "unknown_type"),
    ("unsupported_version", {"msgpack_hex": hexb(pack({"v": 2, "t": "ping"}))}, "unsupported_version"),
    ("missing_version", {"msgpack_hex": hexb(pack({"t": "ping"}))}, "bad_frame"),
    ("not_a_map", {"msgpack_hex": "93010203"}, "bad_frame"),
    ("trailing_bytes", {"msgpack_hex": hexb(pack({"v": 1, "t": "ping"})) + "c0"}, "bad_frame"),
    ("truncated", {"msgpack_hex": hexb(pack({"v": 1, "t": "ping"}))[:-2]}, "bad_frame"),
    ("ext_type", {"msgpack_hex": "83a174a470696e67a17601a169d40100"}, "bad_frame"),
    ("duplicate_key", {"msgpack_hex": "83a174a470696e67a17601a17602"}, "bad_frame"),
    ("invalid_utf8_doc", {"msgpack_hex": "83a3646f63a2c0afa174a9737562736372696265a17601"}, "bad_frame"),
    ("empty_doc", {"msgpack_hex": hexb(pack({"v": 1, "t": "subscribe", "doc": ""}))}, "bad_doc_id"),
    ("long_doc", {"msgpack_hex": hexb(pack({"v": 1, "t": "subscribe", "doc": "x" * 256}))}, "bad_doc_id"),
    ("client_id_short", {"msgpack_hex": hexb(pack({"v": 1, "t": "flush", "doc": "d", "client_id": b"\x01" * 15,
                                                   "seq": 1, "base_version": 0, "commands": []}))}, "bad_frame"),
    ("seq_zero", {"msgpack_hex": hexb(pack({"v": 1, "t": "flush", "doc": "d", "client_id": b"\x01" * 16,
                                            "seq": 0, "base_version": 0, "commands": []}))}, "bad_frame"),
    ("unknown_op", {"msgpack_hex": hexb(pack({"v": 1, "t": "flush", "doc": "d", "client_id": b"\x01" * 16,
                                              "seq": 1, "base_version": 0,
                                              "commands": [{"op": "explode", "path": ""}]}))}, "bad_frame"),
    ("negative_seq", {"msgpack_hex": hexb(pack({"v": 1, "t": "flush", "doc": "d", "client_id": b"\x01" * 16,
                                                "seq": -1, "base_version": 0, "commands": []}))}, "bad_frame"),
    ("huge_array_declared", {"msgpack_hex": "83a174a470696e67a17601a178ddffffffff"}, "bad_frame"),
    ("depth_bomb", {"msgpack_hex": hexb(pack({"v": 1, "t": "signal", "doc": "d"}))[:-0 or None]
                    .replace("83", "84", 1) + "a4626f6479" + "91" * 100 + "c0"}, "bad_frame"),
    ("json_bad_client_id", {"json_text": json.dumps({"v": 1, "t": "flush", "doc": "d", "client_id": "XYZ",
                                                     "seq": 1, "base_version": 0, "commands": []})}, "bad_frame"),
    ("json_unknown_type", {"json_text": "{\"v\":1,\"t\":\"nope\"}"}, "unknown_type"),
    ("too_many_commands", {"msgpack_hex": hexb(pack({"v": 1, "t": "flush", "doc": "d", "client_id": b"\x01" * 16,
                                                     "seq": 1, "base_version": 0,
                                                     "commands": [{"op": "remove", "path": "/x"}] * 1001}))}, "limit"),
    ("json_syntax", {"json_text": "{\"v\":1,"}, "bad_frame"),
    # bounded strings over their bound are "limit" (the reason names the field)
    ("hello_token_too_long", {"msgpack_hex": hexb(pack({"v": 1, "t": "hello", "token": "t" * 8193}))},
     "limit"),
    ("hello_client_too_long", {"json_text": json.dumps({"v": 1, "t": "hello", "token": "t",
                                                        "client": "c" * 129})}, "limit"),
    # fixed-size byte fields in JSON are lowercase hex only
    ("json_uppercase_client_id", {"json_text": json.dumps({"v": 1, "t": "flush", "doc": "d",
                                                           "client_id": CID.upper(), "seq": 1,
                                                           "base_version": 0, "commands": []})},
     "bad_frame"),
    # {"$bin"} is canonical padded base64 (standard alphabet) or refused
    ("json_bin_unpadded", {"json_text": "{\"v\":1,\"t\":\"signal\",\"doc\":\"d\",\"body\":{\"$bin\":\"AAE\"}}"},
     "bad_frame"),
    ("json_bin_noncanonical", {"json_text": "{\"v\":1,\"t\":\"signal\",\"doc\":\"d\",\"body\":{\"$bin\":\"AAF=\"}}"},
     "bad_frame"),
    ("json_bin_bad_chars", {"json_text": "{\"v\":1,\"t\":\"signal\",\"doc\":\"d\",\"body\":{\"$bin\":\"!!!!\"}}"},
     "bad_frame"),
    ("json_float_version", {"json_text": "{\"v\":1.0,\"t\":\"ping\"}"}, "bad_frame"),
]

SERVER_BAD = [
    ("welcome_exp_not_int", {"msgpack_hex": hexb(pack({"v": 1, "t": "welcome", "user": "u", "server": "s",
                                                       "limits": {"max_frame": 1, "max_commands": 1,
                                                                  "max_subscriptions": 1, "rate": 1,
                                                                  "burst": 1},
                                                       "exp": "soon"}))}, "bad_frame"),
    ("welcome_leeway_negative", {"msgpack_hex": hexb(pack({"v": 1, "t": "welcome", "user": "u",
                                                           "server": "s",
                                                           "limits": {"max_frame": 1, "max_commands": 1,
                                                                      "max_subscriptions": 1, "rate": 1,
                                                                      "burst": 1},
                                                           "leeway": -1}))}, "bad_frame"),
    ("error_reason_too_long", {"msgpack_hex": hexb(pack({"v": 1, "t": "error", "code": 20,
                                                         "reason": "r" * 1025}))}, "limit"),
    ("changed_missing_version", {"msgpack_hex": hexb(pack({"v": 1, "t": "changed",
                                                          "doc": "acme/board-1"}))},
     "bad_frame"),
    ("changed_negative_version", {"msgpack_hex": hexb(pack({"v": 1, "t": "changed",
                                                           "doc": "acme/board-1",
                                                           "version": -1}))}, "bad_frame"),
    ("changed_empty_doc", {"msgpack_hex": hexb(pack({"v": 1, "t": "changed", "doc": "",
                                                    "version": 1}))}, "bad_doc_id"),
]

RECORD_BAD = [
    ("deltas_not_consecutive", {"msgpack_hex": hexb(pack(to_wire(
        {"v": 1, "t": "sync_reply", "doc": "d", "gw": "g", "req": 1, "version": 43, "chain": H1,
         "from_version": 40, "items": [{"version": 43, "client_id": CID, "seq": 1, "user": "u",
                                        "ts": 0, "chain": H1,
                                        "commands": [{"op": "add", "path": "/a", "value": 1}]}]})))},
     "bad_frame"),
    ("outcome_missing_commands", {"msgpack_hex": hexb(pack(to_wire(
        {"v": 1, "t": "outcome", "doc": "d", "client_id": CID, "seq": 1, "code": 0,
         "version_before": 0, "version_after": 0, "chain": H1, "results": [], "user": "u",
         "ts": 0, "gw": "g", "origin": 1})))}, "bad_frame"),
    ("flush_without_user", {"msgpack_hex": hexb(pack(to_wire(
        {"v": 1, "t": "flush", "doc": "d", "client_id": CID, "seq": 1, "base_version": 0,
         "gw": "g", "origin": 1, "commands": []})))}, "bad_frame"),
    ("client_type_as_record", {"msgpack_hex": hexb(pack({"v": 1, "t": "hello", "token": "x"}))},
     "unknown_type"),
    ("snapshot_dedup_evicted_negative", {"msgpack_hex": hexb(pack(to_wire(
        {"v": 1, "t": "snapshot", "doc": "d", "version": 1, "chain": H1, "digest": H3,
         "state": {}, "events_offset": 0, "dedup_evicted": -1, "dedup": []})))}, "bad_frame"),
    ("changed_as_record", {"msgpack_hex": hexb(pack({"v": 1, "t": "changed", "doc": "d",
                                                     "version": 1}))}, "unknown_type"),
]

VALUES = [
    ("nil", None), ("true", True), ("false", False), ("zero", 0), ("fixint_max", 127),
    ("uint8", 128), ("uint16", 256), ("uint32", 65536), ("uint64", 4294967296),
    ("int64_max", 2**63 - 1), ("neg_fixint", -32), ("int8", -33), ("int16", -129),
    ("int32", -32769), ("int64", -2147483649), ("int64_min", -2**63),
    ("float", 1.5), ("float_integral", 1.0), ("float_neg", -0.25),
    ("str_empty", ""), ("str_fix", "a" * 31), ("str8", "b" * 32), ("str16", "c" * 256),
    ("str_utf8", "d\u00e9j\u00e0 \U0001F600"), ("bin", {"$bin": "AAECAw=="}),
    ("bin_empty", {"$bin": ""}),
    ("array", [1, "two", None, [3.5]]), ("array16", list(range(16))),
    ("map_sorted", {"b": 1, "a": 2, "ab": 3, "": 0, "B": 4}),
    ("map16", {"k%02d" % i: i for i in range(16)}),
    ("nested", {"doc": {"cards": [{"id": "c1", "done": False}], "n": -7}}),
]

VALUES_NONCANONICAL = [
    # accepted input, canonical re-encoding
    ("uint8_small", "cc05", "05"), ("int64_small", "d3ffffffffffffffff", "ff"),
    ("float32", "ca3fc00000", "cb3ff8000000000000"), ("str8_short", "d90161", "a161"),
    ("bin16_short", "c50001ff", "c401ff"), ("array16_short", "dc0001c0", "91c0"),
    ("map_unsorted", "82a162c2a161c3", "82a161c3a162c2"),
]

VALUES_BAD = [
    ("ext", "d40100", "type"), ("ext8", "c70101ff", "type"), ("never_used", "c1", "type"),
    ("uint64_above_int64", "cf8000000000000000", "type"),
    ("nan", "cb7ff8000000000000", "float"), ("inf", "cb7ff0000000000000", "float"),
    ("neg_inf_f32", "caff800000", "float"),
    ("int_key", "810101", "key"), ("duplicate_key", "82a16101a16102", "key"),
    ("duplicate_key_unsorted", "83a16201a16102a16203", "key"),
    ("bad_utf8", "a2c0af", "utf8"), ("overlong", "a2c080", "utf8"),
    ("surrogate", "a3eda080", "utf8"), ("above_max_cp", "a4f4908080", "utf8"),
    ("bad_utf8_key", "81a1ff01", "utf8"), ("truncated", "a461", "truncated"),
    ("truncated_array", "92c0", "truncated"), ("huge_array", "ddffffffff", "size"),
    ("huge_map", "dfffffffff", "size"), ("huge_str", "dbffffffff", "size"),
    ("depth_65", "91" * 65 + "c0", "depth"), ("trailing", "c0c0", "trailing"),
]


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def messages(dirname, cases, bad, desc):
    out = {"description": desc, "dir": dirname, "cases": []}
    for name, js in cases:
        out["cases"].append({"name": name, "json": js, "msgpack_hex": hexb(pack(to_wire(js)))})
    for name, inp, err in bad:
        c = {"name": name}
        c.update(inp)
        c["error"] = err
        out["cases"].append(c)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(here, "..", "vectors", "messages")
    write(os.path.join(outdir, "client.json"),
          messages("c2s", CLIENT, CLIENT_BAD, "client -> gateway frames"))
    write(os.path.join(outdir, "server.json"),
          messages("s2c", SERVER, SERVER_BAD, "gateway -> client frames"))
    write(os.path.join(outdir, "records.json"),
          messages("record", RECORDS, RECORD_BAD, "Kafka record values"))
    vals = {"description": "values: canonical encodings, accepted non-canonical input, rejections",
            "cases": []}
    for name, js in VALUES:
        vals["cases"].append({"name": name, "json": js, "msgpack_hex": hexb(pack(to_wire(js, None, False)))})
    for name, inp, canon in VALUES_NONCANONICAL:
        vals["cases"].append({"name": name, "input_hex": inp, "msgpack_hex": canon})
    for name, inp, err in VALUES_BAD:
        vals["cases"].append({"name": name, "msgpack_hex": inp, "error": err})
    write(os.path.join(outdir, "values.json"), vals)


if __name__ == "__main__":
    main()
