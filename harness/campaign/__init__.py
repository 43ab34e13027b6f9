"""One run's traffic over time, driven by the judge: rounds of bursts from fresh clients until the
verdict is settled (:func:`harness.campaign.bursts.send_bursts`), each round with its resends and
confirmations (:mod:`~harness.campaign.rounds`), then the bypass and recovery checks
(:mod:`~harness.campaign.follow_ups`); or sustained traffic (:mod:`~harness.campaign.sustained`);
with ``{identity}`` values never reused within a session (:mod:`~harness.campaign.identities`)."""
