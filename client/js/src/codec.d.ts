// SPDX-License-Identifier: Apache-2.0
/** An integral float64 such as 1.0 (non-integral floats are plain numbers). */
export class Float { constructor(value: number); value: number; valueOf(): number; }
/**
 * A Flushline value: null, boolean, int (safe-integer number or bigint), float (other
 * numbers, or Float), string, bin (Uint8Array), array, map (plain object).
 */
export type Value = null | boolean | number | bigint | string | Float | Uint8Array | Value[] | { [key: string]: Value };
export class CodecError extends Error { code: string; }
export const LIMITS: { max_depth: number; max_items: number; max_str: number };
export function float(x: number): number | Float;
export function kind(x: Value): 'nil' | 'bool' | 'int' | 'float' | 'str' | 'bin' | 'array' | 'map';
/** Canonical msgpack encoding. */
export function encode(x: Value): Uint8Array;
/** Strict msgpack decoding of one whole value; throws CodecError. */
export function decode(buf: Uint8Array, lim?: Partial<typeof LIMITS>): Value;
export function parseJSON(text: string): Value;
export function stringifyJSON(x: Value): string;
export function equal(a: Value, b: Value): boolean;
export function clone<T extends Value>(x: T): T;
export function toHex(b: Uint8Array): string;
export function fromHex(s: string): Uint8Array;
/** The numeric value of an int or float (Float unwrapped). */
export function floatOf(x: Value): number;
/** An int as a number when it is safe, else a bigint. */
export function normInt(x: number | bigint): number | bigint;
export function setKey(obj: { [key: string]: Value }, key: string, val: Value): void;
export function hasKey(obj: object, key: string): boolean;
/** Map keys in canonical order (by UTF-8 bytes). */
export function sortedKeys(obj: { [key: string]: Value }): string[];
export function utf8(s: string): Uint8Array;
