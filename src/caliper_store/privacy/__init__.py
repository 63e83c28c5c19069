"""Privacy: ingest rules (drop, redact, truncate, pseudonymize), retention, a person's rights."""

from caliper_store.privacy.person import (
    ErasureResult,
    PersonTraces,
    erase_person,
    export_lines,
    find_person,
    person_hmac,
)
from caliper_store.privacy.pseudonyms import (
    PSEUDONYM_PREFIX,
    Pseudonymizer,
    is_pseudonym,
    load_pseudonymizer,
)
from caliper_store.privacy.retention import (
    PurgeResult,
    RetentionPolicy,
    plan_purge,
    purge,
    purge_on_schedule,
)
from caliper_store.privacy.rules import (
    Change,
    KeyRules,
    Privacy,
    Rule,
    RuleBook,
    RulesError,
    RulesProblem,
    load_privacy,
    load_rules,
    parse_rules,
    recommended_rules,
    take_into_use,
    truncated_ip,
)

__all__ = [
    "PSEUDONYM_PREFIX",
    "Change",
    "ErasureResult",
    "KeyRules",
    "PersonTraces",
    "Privacy",
    "Pseudonymizer",
    "PurgeResult",
    "RetentionPolicy",
    "Rule",
    "RuleBook",
    "RulesError",
    "RulesProblem",
    "erase_person",
    "export_lines",
    "find_person",
    "is_pseudonym",
    "load_privacy",
    "load_pseudonymizer",
    "load_rules",
    "parse_rules",
    "person_hmac",
    "plan_purge",
    "purge",
    "purge_on_schedule",
    "recommended_rules",
    "take_into_use",
    "truncated_ip",
]
