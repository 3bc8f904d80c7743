// Owns the policies in force: read-only mode and the rule lists, swapped whole by a reload.
// Readers take `current()` once per operation, so a reload never mixes old and new rules.

import type { ImmutableRule, QuotaRule, RetentionRule } from "./rules.ts";

export interface Policies {
  readOnly: boolean;
  retention: readonly RetentionRule[];
  immutable: readonly ImmutableRule[];
  quotas: readonly QuotaRule[];
}

/** The settings the policies come from: `--read-only` and the config file's sections. */
export interface PolicySettings {
  readOnly?: boolean;
  sections?: {
    retention?: RetentionRule[];
    "immutable-tags"?: ImmutableRule[];
    quotas?: QuotaRule[];
  };
}

export function policiesFrom(settings: PolicySettings): Policies {
  return {
    readOnly: settings.readOnly ?? false,
    retention: settings.sections?.retention ?? [],
    immutable: settings.sections?.["immutable-tags"] ?? [],
    quotas: settings.sections?.quotas ?? [],
  };
}

export interface LivePolicies {
  current(): Policies;
  /** Puts new policies in force at once (one assignment: no request sees half of them). */
  replace(next: Policies): void;
}

export function livePolicies(initial: Policies): LivePolicies {
  let policies = initial;
  return {
    current: () => policies,
    replace(next) {
      policies = next;
    },
  };
}
