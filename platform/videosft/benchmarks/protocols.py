"""Named evaluation protocols: which published tool's rules a score reproduces, and at which version.

A protocol fixes, per benchmark, the prompt text and option layout, the generation length, the
answer-parsing rule, what an empty or unparseable answer counts as, and the aggregation (each
benchmark module implements one `Benchmark` per protocol). Scores, predictions and reports carry
the protocol's name and version, so a number is never compared with a published table made under
other rules without saying so.

- ``lmms_eval``: lmms-eval's task ``utils.py`` (``doc_to_text``, ``process_results``, the
  aggregation functions) and task YAMLs (prompt kwargs, ``generation_kwargs``) at ``version``;
  checked row for row against lmms-eval's own code in the test suite.
- ``vlmevalkit``: VLMEvalKit's rule-based path (``exact_matching`` judge, no LLM): its prompt
  builders and its extraction rules, transcribed from its source at ``version``. Where
  VLMEvalKit would call an LLM judge, the rule-based outcome is used and the row is flagged
  ``needs_judge``; the count is reported beside the score.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    name: str
    tool: str  # the published tool whose rules are reproduced
    version: str  # the tool release (or commit) those rules were taken from
    judge: str  # how answers are judged: the tool's rule-based path, never an LLM here


PROTOCOLS: dict[str, Protocol] = {
    "lmms_eval": Protocol("lmms_eval", "lmms-eval", "0.7.3", "process_results (rule-based)"),
    "vlmevalkit": Protocol("vlmevalkit", "VLMEvalKit", "0.2rc1@e8e78f0", "exact_matching (no LLM judge)"),
}
DEFAULT_PROTOCOL = "lmms_eval"
# The synthetic benchmarks are this project's own: one rule set, whatever protocol is chosen.
OWN_PROTOCOL = Protocol("videosft", "videosft", "1", "answers.py fixed rules")


def get_protocol(name: str) -> Protocol:
    if name == OWN_PROTOCOL.name:
        return OWN_PROTOCOL
    if name not in PROTOCOLS:
        raise ValueError(f"eval.protocol: unknown protocol {name!r}; expected one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]
