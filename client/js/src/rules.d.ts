// SPDX-License-Identifier: Apache-2.0
import type { Value } from './codec.js';
import type { Command, CompiledRules, RulesContext } from './engine.js';
export class RulesError extends Error {}
/** Compiles a rules document (schemas/RULES.md); throws RulesError naming the JSON path. */
export function compileRules(doc: Value): CompiledRules;
/** The name of the rule cmd breaks on state (before it), or null. */
export function checkCommand(rules: CompiledRules, state: Value, cmd: Command, ctx: RulesContext): string | null;
/** Whether v satisfies a schema of the RULES.md subset. */
export function validate(schema: Value, v: Value): boolean;
/** Every location of state that breaks a constraint. */
export function checkDoc(rules: CompiledRules, state: Value): { rule: string; where: string }[];
