"""Whether more traffic could change a verdict (the campaign's stopping rule asks here): how many
bursts crossed the limit, and how many started a window, with a race's overlap, and whether the
verdict rests on too little.
"""

from __future__ import annotations

from harness.verdict.claims import Claim, Verdict
from harness.verdict.findings import overlapped, started_together


def more_bursts_could_settle(verdict: Verdict, claim: Claim, overlap_possible: bool) -> bool:
    """Whether another burst could change or firm up ``verdict`` beyond the bursts planned: it
    is not proven (a failure, an error) and rests on too little. Over-admissions that a window
    edge explains (a race over-admits again and again, and where each burst could have had its
    edge soon rules one edge out, while a correct window's next bursts come clean), or no
    crossing with requests inside the app together (where overlap is possible). Too few workers
    is left to the bursts planned: traffic that stays on one worker stays there.
    """
    if verdict.basis == "edges-unclean":
        return True
    if verdict.basis == "no-overlap":
        return overlap_possible
    return verdict.basis == "held" and verdict.edge_chance is not None


def strong_starts(verdict: Verdict, claim: Claim) -> int:
    """How many of the verdict's bursts started a window with a race's overlap."""
    return sum(started_together(f, claim) for f in verdict.bursts)


def strong_crossings(verdict: Verdict, claim: Claim) -> int:
    """How many of the verdict's bursts crossed the limit with a race's overlap."""
    return sum(overlapped(f, claim) for f in verdict.bursts)
