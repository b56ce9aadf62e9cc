// SPDX-License-Identifier: Apache-2.0
// pointer: RFC 6901 JSON Pointers, for the engine (which exports them) and the rules
// (which the engine imports, so they cannot import the engine). Pure.

/** Splits an RFC 6901 pointer into unescaped tokens; null when it is not syntactically valid. */
export function parsePointer(p) {
  if (p === '') return [];
  if (typeof p !== 'string' || p[0] !== '/') return null;
  const out = [];
  for (const raw of p.slice(1).split('/')) {
    if (/~(?![01])/.test(raw)) return null;
    out.push(raw.replace(/~1/g, '/').replace(/~0/g, '~'));
  }
  return out;
}

/** Escapes one token for a pointer. */
export const escapeToken = (t) => String(t).replace(/~/g, '~0').replace(/\//g, '~1');
