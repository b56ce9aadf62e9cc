// SPDX-License-Identifier: Apache-2.0
// Wire messages (schemas/PROTOCOL.md): checked field by field on the way in.
import type { Value } from './codec.js';

export type Direction = 'c2s' | 's2c' | 'record';
export interface Limits { max_frame: number; max_commands: number; max_body: number; max_token: number; }
/** A decoded message: {v, t, ...fields of its type}. */
export type Message = { v: number; t: string; [field: string]: any };

export const VERSION: number;
export const OPS: string[];
export const FRAME_LIMITS: Limits;
export const RECORD_LIMITS: Limits;
/** Checks a decoded envelope map of direction dir; returns the message or throws CodecError. */
export function check(m: Value, dir: Direction, json?: boolean, lim?: Limits): Message;
export function decodeMessage(buf: Uint8Array, dir: Direction, lim?: Limits): Message;
export function decodeMessageJSON(text: string, dir: Direction, lim?: Limits): Message;
export function encodeMessage(msg: Message): Uint8Array;
export function encodeMessageJSON(msg: Message): string;
/** The JSON form of a message (bin as {"$bin": base64}, ids as hex). */
export function messageToJSONValue(msg: Message): Value;
